# Writes the embedded default configuration to OUTPUT (the Debian package's conffile
# /etc/corral/corral.yaml), with a header that says where the documentation is.
# Run with -DCORRAL=<corral binary> -DOUTPUT=<file>.
#
# `corral --print-default-config` is the one source: the conffile is exactly what the
# binary embeds (tests/package/test_deb.sh compares them).
execute_process(COMMAND ${CORRAL} --print-default-config
                RESULT_VARIABLE rc OUTPUT_VARIABLE yaml ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR yaml STREQUAL "")
  message(FATAL_ERROR "default_config.cmake: ${CORRAL} --print-default-config failed (${rc}): ${err}")
endif()
file(WRITE ${OUTPUT}
     "# corral configuration: see corral.yaml(5) and /usr/share/doc/corral/examples/.\n"
     "# Check it with `corral -t -c /etc/corral/corral.yaml`; `systemctl reload corral`\n"
     "# applies it (a bad file is refused and the running configuration stays).\n"
     "${yaml}")
