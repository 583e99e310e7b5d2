# Installing and packaging the command (README "Installing"): `cmake --install build --prefix P`
# puts the binary in P/bin, palettize(1) in P/share/man/man1 and README.md in P/share/doc/palettize;
# `cpack -G DEB` (run in the build folder) makes a .deb of the same files. scripts/check-install
# tests all three ways of installing, and pip's. Not part of the Python package's build (python/
# installs the command itself) nor of the fuzz build.
include(GNUInstallDirs)

install(TARGETS palettize RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES "${PROJECT_SOURCE_DIR}/README.md" DESTINATION ${CMAKE_INSTALL_DOCDIR})

# palettize(1), generated from the binary's --help after each build of it (cmake/man_page.cmake).
# A cross build runs the binary through its emulator; without one there is no page to install,
# which configure says.
set(_palettize_man "${PROJECT_BINARY_DIR}/man/palettize.1")
if(CMAKE_CROSSCOMPILING AND NOT CMAKE_CROSSCOMPILING_EMULATOR)
  message(STATUS "palettize: cross build without CMAKE_CROSSCOMPILING_EMULATOR: no man page is generated or installed")
else()
  add_custom_command(
    OUTPUT "${_palettize_man}"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${PROJECT_BINARY_DIR}/man"
    COMMAND ${CMAKE_COMMAND} "-DPALETTIZE=$<TARGET_FILE:palettize>" "-DEMULATOR=${CMAKE_CROSSCOMPILING_EMULATOR}"
            "-DVERSION=${PROJECT_VERSION}" "-DOUT=${_palettize_man}" -P "${PROJECT_SOURCE_DIR}/cmake/man_page.cmake"
    DEPENDS palettize "${PROJECT_SOURCE_DIR}/cmake/man_page.cmake"
    COMMENT "Generating palettize(1) from palettize --help"
    VERBATIM)
  add_custom_target(palettize_man ALL DEPENDS "${_palettize_man}")
  install(FILES "${_palettize_man}" DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

# The .deb. Its dependencies are the shared libraries the binary links (dpkg-shlibdeps reads them
# from the binary: libprotobuf, libyaml-cpp, libspdlog, libfmt, libtbb, zlib, libstdc++, libc).
set(CPACK_PACKAGE_NAME palettize)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Compress Core ML models and safetensors checkpoints by weight palettization")
set(CPACK_PACKAGE_CONTACT "palettize maintainers <palettize@localhost>")
set(CPACK_PACKAGE_FILE_NAME "palettize_${PROJECT_VERSION}_${CMAKE_SYSTEM_PROCESSOR}")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Stripped in the package; the build folder's binary keeps what its build type gives it.
set(CPACK_STRIP_FILES ON)
include(CPack)
