#include <doctest.h>

#include <string_view>

#include "lb/core/kupo_path.h"

using namespace lb;

TEST_CASE("kupo_path: leading v1 segments and slashes are dropped") {
  CHECK(kupo_route("/datums/ab") == "datums/ab");
  CHECK(kupo_route("/v1/datums/ab") == "datums/ab");
  CHECK(kupo_route("/v1/v1//v1/datums/ab") == "datums/ab");
  CHECK(kupo_route("/v1") == "");
  CHECK(kupo_route("/v1/") == "");
  CHECK(kupo_route("/v1x/y") == "v1x/y");
  CHECK(kupo_route("/V1/y") == "V1/y");  // Kupo compares segments exactly
  CHECK(kupo_route("/datums/v1") == "datums/v1");
}

TEST_CASE("kupo_path: endpoint and the rest") {
  std::string_view rest = "unchanged";
  CHECK(kupo_endpoint("/v1/metadata/123", &rest) == "metadata");
  CHECK(rest == "123");
  CHECK(kupo_endpoint("/checkpoints", &rest) == "checkpoints");
  CHECK(rest.empty());
  CHECK(kupo_endpoint("/scripts/ab/cd", &rest) == "scripts");
  CHECK(rest == "ab/cd");
  CHECK(kupo_endpoint("/", &rest) == "");
  CHECK(rest.empty());
  CHECK(kupo_endpoint("/matches") == "matches");
}
