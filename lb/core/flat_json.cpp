#include "lb/core/flat_json.h"

#include <cmath>
#include <cstdlib>

namespace lb {

namespace {

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool eat(char c) {
    skip_ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool at_end() {
    skip_ws();
    return i_ == s_.size();
  }
  char peek() {
    skip_ws();
    return i_ < s_.size() ? s_[i_] : '\0';
  }

  // A string literal, unescaped (json_unescape).
  std::optional<std::string> string() {
    if (!eat('"')) return std::nullopt;
    const size_t body = i_;
    // Hex digits are never a quote or a backslash, so stepping over each escape's first
    // character finds the closing quote; json_unescape then checks the escapes.
    while (i_ < s_.size() && s_[i_] != '"') i_ += s_[i_] == '\\' ? 2 : 1;
    if (i_ >= s_.size()) return std::nullopt;
    ++i_;
    return json_unescape(s_.substr(body, i_ - 1 - body));
  }

  // Skips a nested object or array, strings included, and returns its raw text. Iterative,
  // with a depth cap, so that "[[[[..." can neither overflow the stack nor be accepted.
  std::optional<std::string> nested() {
    skip_ws();
    const size_t start = i_;
    int depth = 0;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == '"') {
        if (!string()) return std::nullopt;
        continue;
      }
      ++i_;
      if ((c == '{' || c == '[') && ++depth > FlatJson::kMaxDepth) return std::nullopt;
      if (c == '}' || c == ']') {
        if (--depth == 0) return std::string(s_.substr(start, i_ - start));
      }
    }
    return std::nullopt;
  }

  std::optional<JsonValue> value() {
    JsonValue v;
    char c = peek();
    if (c == '"') {
      auto s = string();
      if (!s) return std::nullopt;
      v.type = JsonValue::Type::string;
      v.text = std::move(*s);
      return v;
    }
    if (c == '{' || c == '[') {
      auto raw = nested();
      if (!raw) return std::nullopt;
      v.type = JsonValue::Type::nested;
      v.text = std::move(*raw);
      return v;
    }
    if (literal("true")) {
      v.type = JsonValue::Type::boolean;
      v.boolean = true;
      return v;
    }
    if (literal("false")) {
      v.type = JsonValue::Type::boolean;
      return v;
    }
    if (literal("null")) return v;
    // A number: strtod on a bounded copy, so that it cannot read past the view.
    size_t end = i_;
    while (end < s_.size() &&
           std::string_view("+-.0123456789eE").find(s_[end]) != std::string_view::npos)
      ++end;
    if (end == i_) return std::nullopt;
    std::string num(s_.substr(i_, end - i_));
    char* stop = nullptr;
    v.number = std::strtod(num.c_str(), &stop);
    if (stop != num.c_str() + num.size()) return std::nullopt;
    v.type = JsonValue::Type::number;
    i_ = end;
    return v;
  }

 private:
  bool literal(std::string_view word) {
    skip_ws();
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::optional<uint64_t> JsonValue::as_count() const {
  if (type != Type::number || number < 0 || number > 9.0e15 || std::floor(number) != number)
    return std::nullopt;
  return static_cast<uint64_t>(number);
}

bool JsonValue::is_object() const {
  return type == Type::nested && !text.empty() && text.front() == '{';
}

std::optional<FlatJson> FlatJson::parse(std::string_view text) {
  if (text.size() > kMaxBytes) return std::nullopt;
  Reader r(text);
  FlatJson out;
  if (!r.eat('{')) return std::nullopt;
  while (!r.eat('}')) {
    auto key = r.string();
    if (!key || !r.eat(':')) return std::nullopt;
    auto value = r.value();
    if (!value) return std::nullopt;
    out.fields_.emplace_back(std::move(*key), std::move(*value));
    if (r.eat(',')) continue;  // a trailing comma before '}' is forgiven by the loop
    if (r.peek() != '}') return std::nullopt;
  }
  if (!r.at_end()) return std::nullopt;
  return out;
}

const JsonValue* FlatJson::find(std::string_view key) const {
  for (auto it = fields_.rbegin(); it != fields_.rend(); ++it)
    if (it->first == key) return &it->second;
  return nullptr;
}

std::optional<JsonValue> FlatJson::lookup(std::string_view path) const {
  // Each step re-parses the raw text of one nested object: health answers are small and
  // this keeps the reader flat (no tree, no recursion).
  std::optional<FlatJson> holder;
  const FlatJson* at = this;
  for (;;) {
    const size_t dot = path.find('.');
    const JsonValue* v = at->find(path.substr(0, dot));
    if (!v) return std::nullopt;
    if (dot == std::string_view::npos) return *v;
    if (!v->is_object()) return std::nullopt;
    std::optional<FlatJson> next = parse(v->text);
    if (!next) return std::nullopt;
    holder = std::move(next);
    at = &*holder;
    path.remove_prefix(dot + 1);
  }
}

std::optional<std::string> json_unescape(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= body.size()) return std::nullopt;
    const char e = body[i];
    switch (e) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'u': {
        if (i + 4 >= body.size()) return std::nullopt;  // four hex digits follow the u
        unsigned cp = 0;
        for (size_t k = 1; k <= 4; ++k) {
          const char h = body[i + k];
          const int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
          if (d < 0) return std::nullopt;
          cp = cp * 16 + static_cast<unsigned>(d);
        }
        i += 4;
        if (cp < 0x80) {
          out += static_cast<char>(cp);
        } else if (cp < 0x800) {
          out += static_cast<char>(0xC0 | (cp >> 6));
          out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
          out += static_cast<char>(0xE0 | (cp >> 12));
          out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
          out += static_cast<char>(0x80 | (cp & 0x3F));
        }
        break;
      }
      default:
        out += e;  // \" \\ \/ and anything else, tolerantly
        break;
    }
  }
  return out;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[(c >> 4) & 0xF];
          out += hex[c & 0xF];
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace lb
