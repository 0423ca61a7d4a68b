# Every install rule of the project, in one file the top-level CMakeLists.txt includes
# once its targets exist. `make install` wraps `cmake --install` (PREFIX, DESTDIR) and
# the Debian package (debian/) installs through these same rules.
#
# Two files depend on the prefix: prebuilds.pc names the library and header directories
# and the systemd unit names the binary. They are written when installing, not when
# configuring, so `cmake --install --prefix P` gets them right for P.
include(GNUInstallDirs)

set(PB_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Directory for prebuilds.service; a relative path is taken under the install prefix")
option(PB_MAN "Build and install the man pages (needs scdoc)" ON)

# The version shows up in the header (PB_VERSION, --version), the library's file name
# and pkg-config: all three come from project(), and the header must agree.
file(STRINGS ${PROJECT_SOURCE_DIR}/include/prebuilds/prebuilds.h pb_version_line
     REGEX "^#define PB_VERSION ")
string(REGEX REPLACE "^#define PB_VERSION +\"([^\"]*)\".*" "\\1" pb_header_version
       "${pb_version_line}")
if(NOT pb_header_version STREQUAL PROJECT_VERSION)
  message(FATAL_ERROR "include/prebuilds/prebuilds.h has PB_VERSION \"${pb_header_version}\" "
                      "but project() says ${PROJECT_VERSION}: make them agree")
endif()

# ---- man pages, built from their scdoc sources ----
set(PB_MAN_PAGES prebuilds.1 prebuilds.conf.5)
if(PB_MAN)
  find_program(PB_SCDOC scdoc REQUIRED)
  file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/man)
  set(pb_man_outputs)
  foreach(page ${PB_MAN_PAGES})
    set(src ${PROJECT_SOURCE_DIR}/docs/${page}.scd)
    set(out ${PROJECT_BINARY_DIR}/man/${page})
    add_custom_command(
      OUTPUT ${out}
      COMMAND sh -c "'${PB_SCDOC}' < '${src}' > '${out}.tmp' && mv '${out}.tmp' '${out}'"
      DEPENDS ${src}
      COMMENT "scdoc ${page}"
      VERBATIM)
    list(APPEND pb_man_outputs ${out})
    string(REGEX MATCH "[0-9]$" section ${page})
    install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(man ALL DEPENDS ${pb_man_outputs})
endif()

# ---- programs, libraries, headers ----
install(TARGETS prebuilds-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS prebuilds_shared LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS prebuilds ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/prebuilds/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/prebuilds
        FILES_MATCHING PATTERN "*.h")

# ---- files written at install time for the prefix in use ----
set(PB_INSTALL_GEN_DIR ${PROJECT_BINARY_DIR}/install-gen)
configure_file(${PROJECT_SOURCE_DIR}/cmake/install_gen.cmake.in
               ${PROJECT_BINARY_DIR}/install_gen.cmake @ONLY)
install(SCRIPT ${PROJECT_BINARY_DIR}/install_gen.cmake)
install(FILES ${PB_INSTALL_GEN_DIR}/prebuilds.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(FILES ${PB_INSTALL_GEN_DIR}/prebuilds.service DESTINATION ${PB_SYSTEMD_UNITDIR})

# The example configuration is documentation: installing it never touches a live
# configuration in /etc (the Debian package makes its conffile from it).
install(FILES ${PROJECT_SOURCE_DIR}/contrib/prebuilds.conf.example
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
