# `cpack -G DEB` (from the build directory): the Debian package `corral`, prefix /usr, with
# the install set of cmake/install.cmake, a `corral` system user, /var/lib/corral, the
# conffile /etc/corral/corral.yaml and the unit enabled but not started
# (packaging/debian/postinst, prerm, postrm).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME corral)
set(CPACK_PACKAGE_VENDOR "corral")
set(CPACK_PACKAGE_CONTACT "corral maintainers <corral@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "sticky-session HTTP load balancer for Cardano query backends")
set(CPACK_PACKAGE_DESCRIPTION
    "corral pins every user to one Kupo, Ogmios or Blockfrost instance so the chain state\n\
a user sees stays consistent, and keeps the fleet healthy: overloaded or lagging\n\
instances get no new users, dead ones hand their users over.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies (libuv1, libssl3, libyaml-cpp0.7, libxxhash0, libsystemd0, libc6,
# libstdc++6, ...) come from dpkg-shlibdeps on the binaries; adduser for the postinst.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles
    ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_SOURCE_DIR}/packaging/debian/prerm
    ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
# Debug info stays in the build tree: the packaged binaries are stripped (35 MB -> a few).
set(CPACK_STRIP_FILES ON)
include(CPack)
