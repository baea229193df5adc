# Provides the target `atari_vec::ale`: the ALE C++ library, pinned to ATARI_VEC_ALE_VERSION.
# Sources, first found wins:
#   1. ALE_SOURCE_DIR (cache variable or environment): an unpacked ALE source tree;
#   2. an installed ALE of exactly that version: find_package(ale CONFIG);
#   3. the ale-py sdist fetched with pip (so the user's index settings apply),
#      checked against ATARI_VEC_ALE_SHA256 and unpacked into the build tree.
# The C++ library is built static with ALE's own CMake: no Python bindings, no SDL.

if(NOT ALE_SOURCE_DIR AND DEFINED ENV{ALE_SOURCE_DIR})
  set(ALE_SOURCE_DIR "$ENV{ALE_SOURCE_DIR}")
endif()

if(NOT ALE_SOURCE_DIR)
  find_package(ale ${ATARI_VEC_ALE_VERSION} EXACT CONFIG QUIET)
  if(ale_FOUND)
    message(STATUS "ALE: installed package ${ale_DIR}")
    add_library(atari_vec_ale INTERFACE)
    target_link_libraries(atari_vec_ale INTERFACE ale::ale-lib)
    add_library(atari_vec::ale ALIAS atari_vec_ale)
    return()
  endif()
endif()

if(NOT ALE_SOURCE_DIR)
  set(_sdist_name "ale_py-${ATARI_VEC_ALE_VERSION}")
  set(_deps_dir "${CMAKE_BINARY_DIR}/_deps")
  set(_archive "${_deps_dir}/${_sdist_name}.tar.gz")
  set(ALE_SOURCE_DIR "${_deps_dir}/${_sdist_name}")

  if(EXISTS "${_archive}")
    file(SHA256 "${_archive}" _have)
    if(NOT _have STREQUAL ATARI_VEC_ALE_SHA256)
      file(REMOVE "${_archive}")
      file(REMOVE_RECURSE "${ALE_SOURCE_DIR}")
    endif()
  endif()

  if(NOT EXISTS "${_archive}")
    find_package(Python COMPONENTS Interpreter REQUIRED)
    message(STATUS "ALE: fetching the ale-py ${ATARI_VEC_ALE_VERSION} sdist with pip")
    # --no-build-isolation: pip prepares the sdist's metadata with the scikit-build-core
    # that builds us, instead of installing ale-py's own build requirements.
    execute_process(
      COMMAND "${Python_EXECUTABLE}" -m pip download --no-deps --no-binary :all:
              --no-build-isolation --disable-pip-version-check
              "ale-py==${ATARI_VEC_ALE_VERSION}" -d "${_deps_dir}"
      RESULT_VARIABLE _rc
      OUTPUT_VARIABLE _out
      ERROR_VARIABLE _err)
    if(NOT _rc EQUAL 0 OR NOT EXISTS "${_archive}")
      message(FATAL_ERROR
        "Could not fetch ale-py==${ATARI_VEC_ALE_VERSION} (the ALE C++ source) with pip.\n"
        "Set ALE_SOURCE_DIR to an unpacked ALE ${ATARI_VEC_ALE_VERSION} source tree, or install "
        "ALE's C++ library, and build again.\npip said:\n${_out}\n${_err}")
    endif()
    file(SHA256 "${_archive}" _have)
    if(NOT _have STREQUAL ATARI_VEC_ALE_SHA256)
      file(REMOVE "${_archive}")
      message(FATAL_ERROR "ale-py sdist hash mismatch: expected ${ATARI_VEC_ALE_SHA256}, got ${_have}")
    endif()
  endif()

  if(NOT EXISTS "${ALE_SOURCE_DIR}/CMakeLists.txt")
    file(ARCHIVE_EXTRACT INPUT "${_archive}" DESTINATION "${_deps_dir}")
  endif()
endif()

if(NOT EXISTS "${ALE_SOURCE_DIR}/version.txt")
  message(FATAL_ERROR "ALE_SOURCE_DIR=${ALE_SOURCE_DIR} is not an ALE source tree")
endif()
file(READ "${ALE_SOURCE_DIR}/version.txt" _ale_src_version)
string(STRIP "${_ale_src_version}" _ale_src_version)
if(NOT _ale_src_version STREQUAL ATARI_VEC_ALE_VERSION)
  message(FATAL_ERROR "ALE source at ${ALE_SOURCE_DIR} is ${_ale_src_version}, "
                      "but ${ATARI_VEC_ALE_VERSION} is required (it must match the ale-py ROM package)")
endif()

# Our patches to ALE (cmake/patches/ale-<version>-*.patch; each hunk says why): applied to a
# copy of the source in the build tree, so neither the unpacked sdist nor a user's
# ALE_SOURCE_DIR is modified. OFF builds stock ALE (snapshots then do not round-trip exactly
# on every game: docs/ale-roundtrip.md).
option(ATARI_VEC_ALE_PATCHES "Apply atari_vec's patches to ALE (exact snapshot round trips)" ON)
# The speed patches (cmake/patches/speed; each keeps emulation bit-exact, each says why it is
# faster) come after the others; OFF keeps ALE's own emulation code, to measure against.
option(ATARI_VEC_ALE_SPEED "Apply atari_vec's speed patches to ALE (needs ATARI_VEC_ALE_PATCHES)" ON)
set(_ale_patched OFF)
if(ATARI_VEC_ALE_PATCHES)
  file(GLOB _patches "${CMAKE_CURRENT_LIST_DIR}/patches/ale-${ATARI_VEC_ALE_VERSION}-*.patch")
  list(SORT _patches)
  if(ATARI_VEC_ALE_SPEED)
    file(GLOB _speed "${CMAKE_CURRENT_LIST_DIR}/patches/speed/ale-${ATARI_VEC_ALE_VERSION}-*.patch")
    list(SORT _speed)
    list(APPEND _patches ${_speed})
  endif()
  set(_want "${ALE_SOURCE_DIR}")
  foreach(_p IN LISTS _patches)
    file(SHA256 "${_p}" _h)
    string(APPEND _want ";${_h}")
  endforeach()
  set(_patched_dir "${CMAKE_BINARY_DIR}/_deps/ale-patched-${ATARI_VEC_ALE_VERSION}")
  set(_stamp "${_patched_dir}/.atari_vec_patches")
  set(_have "")
  if(EXISTS "${_stamp}")
    file(READ "${_stamp}" _have)
  endif()
  if(NOT _have STREQUAL _want)
    find_program(ATARI_VEC_PATCH_TOOL NAMES patch)
    find_program(ATARI_VEC_GIT_TOOL NAMES git)
    if(NOT ATARI_VEC_PATCH_TOOL AND NOT ATARI_VEC_GIT_TOOL)
      message(FATAL_ERROR "Applying atari_vec's ALE patches needs `patch` or `git` "
                          "(apt-get install patch), or configure with -DATARI_VEC_ALE_PATCHES=OFF")
    endif()
    file(REMOVE_RECURSE "${_patched_dir}")
    file(COPY "${ALE_SOURCE_DIR}/" DESTINATION "${_patched_dir}")
    foreach(_p IN LISTS _patches)
      if(ATARI_VEC_PATCH_TOOL)
        set(_cmd "${ATARI_VEC_PATCH_TOOL}" -p1 --batch --forward -i "${_p}")
      else()
        set(_cmd "${ATARI_VEC_GIT_TOOL}" apply -p1 "${_p}")
      endif()
      execute_process(COMMAND ${_cmd} WORKING_DIRECTORY "${_patched_dir}"
                      RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err)
      if(NOT _rc EQUAL 0)
        file(REMOVE_RECURSE "${_patched_dir}")
        message(FATAL_ERROR "ALE patch ${_p} did not apply:\n${_out}\n${_err}")
      endif()
    endforeach()
    file(WRITE "${_stamp}" "${_want}")
  endif()
  list(LENGTH _patches _n)
  message(STATUS "ALE: ${_n} atari_vec patch(es) applied in ${_patched_dir}")
  set(ALE_SOURCE_DIR "${_patched_dir}")
  set(_ale_patched ON)
endif()
message(STATUS "ALE: building ${_ale_src_version} from ${ALE_SOURCE_DIR}")

set(BUILD_CPP_LIB ON)
set(BUILD_PYTHON_LIB OFF)
set(BUILD_VECTOR_LIB OFF)
set(BUILD_VECTOR_XLA_LIB OFF)
set(SDL_SUPPORT OFF)
set(BUILD_SHARED_LIBS OFF)
add_subdirectory("${ALE_SOURCE_DIR}" "${CMAKE_BINARY_DIR}/ale" EXCLUDE_FROM_ALL SYSTEM)
# ALE turns on LTO for itself. With it every link of our module re-optimises all of ALE,
# for no measurable gain in emulation speed (benchmarks/step_cost), so it is off by default
# and a one-file rebuild relinks in seconds.
option(ATARI_VEC_LTO "Link-time optimisation of ALE (measured: no faster emulation here)" OFF)
set_target_properties(ale ale-lib PROPERTIES INTERPROCEDURAL_OPTIMIZATION ${ATARI_VEC_LTO})
# Functions start on 64-byte boundaries, so a change elsewhere in ALE does not move the hot
# loops of M6502Low::execute within their cache lines: a 16-byte shift alone cost Pong 3-4%
# (benchmarks/ab.py --emulator), and A/B runs of other patches measured that, not the patch.
set(ATARI_VEC_ALE_ALIGN "64" CACHE STRING "Alignment of ALE's functions in bytes (0: the compiler's default)")
if(NOT ATARI_VEC_ALE_ALIGN STREQUAL "0" AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(ale PRIVATE "-falign-functions=${ATARI_VEC_ALE_ALIGN}")
endif()
# Speed patch 7's pixel fills stay loops (GCC would turn them back into memset calls).
if(ATARI_VEC_ALE_SPEED AND _ale_patched AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(ale PRIVATE -fno-tree-loop-distribute-patterns)
endif()
# ALE's include directories are directory-scoped, so consumers get them here;
# version.hpp is generated into ALE's binary tree.
add_library(atari_vec_ale INTERFACE)
target_link_libraries(atari_vec_ale INTERFACE ale-lib)
target_include_directories(atari_vec_ale SYSTEM INTERFACE
  "${ALE_SOURCE_DIR}/src" "${CMAKE_BINARY_DIR}/ale/src/ale")
if(_ale_patched)
  target_compile_definitions(atari_vec_ale INTERFACE ATARI_VEC_ALE_PATCHED=1)
endif()
add_library(atari_vec::ale ALIAS atari_vec_ale)
