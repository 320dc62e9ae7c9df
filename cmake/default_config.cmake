# Writes the embedded default configuration to OUTPUT (the Debian package's conffile
# /etc/corral/corral.yaml). Run with -DCORRAL=<corral binary> -DSOURCE=<embedded_default.cpp>
# -DOUTPUT=<file>.
#
# `corral --print-default-config` is the source of truth. Until a binary has that flag the
# YAML is cut out of config/embedded_default.cpp (the raw string literal R"(...)"), which
# is the same text the binary embeds.
execute_process(COMMAND ${CORRAL} --print-default-config
                RESULT_VARIABLE rc OUTPUT_VARIABLE yaml ERROR_QUIET)
if(NOT rc EQUAL 0 OR yaml STREQUAL "")
  file(READ ${SOURCE} src)
  string(FIND "${src}" "R\"(" begin)
  string(FIND "${src}" ")\";" end)
  if(begin EQUAL -1 OR end EQUAL -1 OR end LESS begin)
    message(FATAL_ERROR "default_config.cmake: no R\"(...)\" literal in ${SOURCE}")
  endif()
  math(EXPR begin "${begin} + 3")
  math(EXPR len "${end} - ${begin}")
  string(SUBSTRING "${src}" ${begin} ${len} yaml)
endif()
file(WRITE ${OUTPUT}.tmp
     "# corral configuration: see corral.yaml(5) and /usr/share/doc/corral/examples/.\n"
     "# Check it with `corral -t -c /etc/corral/corral.yaml`; `systemctl reload corral`\n"
     "# applies it (a bad file is refused and the running configuration stays).\n"
     "${yaml}")
# Only a changed text touches OUTPUT, so an unchanged default rebuilds nothing.
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUTPUT}.tmp)
