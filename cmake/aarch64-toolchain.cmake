# Cross build for aarch64 Linux (scripts/build-arm64) with Debian's cross toolchain
# (g++-aarch64-linux-gnu: its own libc and libstdc++ under /usr/aarch64-linux-gnu) and the
# dependencies' arm64 packages unpacked into a sysroot, PALETTIZE_ARM64_SYSROOT (default
# build-arm64/sysroot). The sysroot holds only the third-party libraries and headers, never libc's
# or libstdc++'s: those come from the toolchain, so no second copy of the C headers sits on the
# include path (libstdc++'s #include_next <stdlib.h> breaks on one). Programs (protoc) are the
# host's. Binaries run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR), which is also how
# catch_discover_tests lists the unit tests.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

if(NOT PALETTIZE_ARM64_SYSROOT)
  set(PALETTIZE_ARM64_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../build-arm64/sysroot")
endif()
get_filename_component(PALETTIZE_ARM64_SYSROOT "${PALETTIZE_ARM64_SYSROOT}" ABSOLUTE)
# try_compile projects see the toolchain file again; they need the same sysroot.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES PALETTIZE_ARM64_SYSROOT)

set(CMAKE_FIND_ROOT_PATH "${PALETTIZE_ARM64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# The sysroot's shared libraries name others (libprotobuf: libz; libtbb: libhwloc) that the linker
# must find there too.
set(_palettize_arm64_libs
    "${PALETTIZE_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu:${PALETTIZE_ARM64_SYSROOT}/lib/aarch64-linux-gnu")
string(APPEND CMAKE_EXE_LINKER_FLAGS_INIT " -Wl,-rpath-link,${_palettize_arm64_libs}")
string(APPEND CMAKE_SHARED_LINKER_FLAGS_INIT " -Wl,-rpath-link,${_palettize_arm64_libs}")

find_program(PALETTIZE_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(PALETTIZE_QEMU_AARCH64)
  # -L: the toolchain's loader and libc; LD_LIBRARY_PATH (read by the guest's loader): the sysroot's.
  set(CMAKE_CROSSCOMPILING_EMULATOR "${PALETTIZE_QEMU_AARCH64};-L;/usr/aarch64-linux-gnu;-E;LD_LIBRARY_PATH=${_palettize_arm64_libs}")
endif()
