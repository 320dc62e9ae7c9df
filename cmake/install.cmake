# Install rules (`cmake --install build`, prefix /usr/local unless --prefix says otherwise):
#   bin/corral, bin/corral-bench
#   share/man/man8/corral.8, man1/corral-bench.1, man5/corral.yaml.5
#   lib/systemd/system/corral.service  (its paths follow the install prefix)
#   share/doc/corral/README.md, share/doc/corral/examples/ (the configs of examples/ and
#     corral.socket, an example socket unit: never installed as a unit, never enabled)
#   /etc/corral/corral.yaml            (the embedded default; never overwrites one that exists)
# The Debian package (cmake/package.cmake) installs the same set with prefix /usr.
include(GNUInstallDirs)

install(TARGETS corral corral-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(FILES docs/man/corral.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES docs/man/corral-bench.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES docs/man/corral.yaml.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
# examples/ holds complete configs that pass `corral -t` (tests/integration/test_examples.py).
# Only the configs and the placeholder secret: state/ and logs/ come as empty directories,
# without whatever a local run left in them.
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
        FILES_MATCHING PATTERN "*.yaml" REGEX "/secrets/[^/]+$")
# Socket activation is the operator's choice (README "systemd readiness and socket
# activation"): the socket unit ships as an example to copy to /etc/systemd/system.
install(FILES packaging/corral.socket DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# The unit is generated when it is installed, not when the tree is configured: cpack
# installs with prefix /usr, `cmake --install` with /usr/local (or --prefix), and the unit's
# ExecStart must name the binary that prefix put there.
set(CORRAL_UNIT_IN ${CMAKE_SOURCE_DIR}/packaging/corral.service.in)
set(CORRAL_UNIT_OUT ${CMAKE_BINARY_DIR}/packaging/corral.service)
install(CODE "
  set(bindir \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  set(docdir \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\")
  configure_file(\"${CORRAL_UNIT_IN}\" \"${CORRAL_UNIT_OUT}\" @ONLY)")
install(FILES ${CORRAL_UNIT_OUT} DESTINATION lib/systemd/system)

# /etc/corral/corral.yaml: the embedded default, written out by one rule from the binary
# (cmake/default_config.cmake). In the package it is a conffile (dpkg keeps local edits).
set(CORRAL_DEFAULT_CONFIG ${CMAKE_BINARY_DIR}/packaging/corral.yaml)
add_custom_command(
  OUTPUT ${CORRAL_DEFAULT_CONFIG}
  COMMAND ${CMAKE_COMMAND} -DCORRAL=$<TARGET_FILE:corral> -DOUTPUT=${CORRAL_DEFAULT_CONFIG}
          -P ${CMAKE_SOURCE_DIR}/cmake/default_config.cmake
  DEPENDS corral ${CMAKE_SOURCE_DIR}/cmake/default_config.cmake
  COMMENT "Writing the default /etc/corral/corral.yaml"
  VERBATIM)
add_custom_target(corral_default_config ALL DEPENDS ${CORRAL_DEFAULT_CONFIG})
# Mode 0640: the config may name secrets' files and corral warns about a config others may
# read; the package's postinst gives it group corral.
install(CODE "
  set(conf \"\$ENV{DESTDIR}/etc/corral/corral.yaml\")
  if(EXISTS \"\${conf}\")
    message(STATUS \"Keeping existing: \${conf}\")
  else()
    # file(INSTALL) puts DESTDIR in front of an absolute destination itself.
    file(INSTALL \"${CORRAL_DEFAULT_CONFIG}\" DESTINATION /etc/corral
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
  endif()")

# The pages render without warnings (mandoc -T lint -W warning, groff -ww -man).
add_test(NAME man_pages COMMAND ${CMAKE_SOURCE_DIR}/tests/package/test_man.sh
         ${CMAKE_SOURCE_DIR}/docs/man/corral.8 ${CMAKE_SOURCE_DIR}/docs/man/corral-bench.1
         ${CMAKE_SOURCE_DIR}/docs/man/corral.yaml.5)
