# Provides the target `atari_vec::opencv` (core + imgproc) and, when OpenCV is used, the
# compile definition ATARI_VEC_HAVE_OPENCV on it.
#
# OpenCV is optional: the native INTER_AREA kernel (cpp/frame_ops.cpp) covers every
# geometry that shrinks by a non-integer factor (84x84 among them) and same-size frames.
# OpenCV's cv::resize serves the rest (integer shrink factors, enlargements); without it,
# asking for such a size raises ValueError. ATARI_VEC_OPENCV:
#   AUTO (default): use OpenCV if found;  ON: require it;  OFF: never use it.
# vcpkg (opencv4 in vcpkg.json) or any OpenCV with a CMake package is found by find_package;
# Debian's libopencv-imgproc-dev ships headers and libraries without the CMake package, so
# those are located directly.
set(ATARI_VEC_OPENCV "AUTO" CACHE STRING "Use OpenCV for the resize geometries the native kernel does not cover: AUTO, ON or OFF")
set_property(CACHE ATARI_VEC_OPENCV PROPERTY STRINGS AUTO ON OFF)
if(DEFINED ENV{ATARI_VEC_OPENCV})
  set(ATARI_VEC_OPENCV "$ENV{ATARI_VEC_OPENCV}")
endif()
if(NOT ATARI_VEC_OPENCV MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "ATARI_VEC_OPENCV must be AUTO, ON or OFF, got '${ATARI_VEC_OPENCV}'")
endif()

add_library(atari_vec_opencv INTERFACE)
add_library(atari_vec::opencv ALIAS atari_vec_opencv)
if(ATARI_VEC_OPENCV STREQUAL "OFF")
  message(STATUS "OpenCV: not used (ATARI_VEC_OPENCV=OFF)")
  return()
endif()

find_package(OpenCV QUIET COMPONENTS core imgproc)
if(OpenCV_FOUND)
  message(STATUS "OpenCV: ${OpenCV_VERSION} from ${OpenCV_DIR}")
  target_include_directories(atari_vec_opencv SYSTEM INTERFACE ${OpenCV_INCLUDE_DIRS})
  target_link_libraries(atari_vec_opencv INTERFACE opencv_core opencv_imgproc)
else()
  find_path(OPENCV_IMGPROC_INCLUDE_DIR opencv2/imgproc.hpp PATH_SUFFIXES opencv4)
  find_library(OPENCV_CORE_LIBRARY opencv_core)
  find_library(OPENCV_IMGPROC_LIBRARY opencv_imgproc)
  if(NOT OPENCV_IMGPROC_INCLUDE_DIR OR NOT OPENCV_CORE_LIBRARY OR NOT OPENCV_IMGPROC_LIBRARY)
    if(ATARI_VEC_OPENCV STREQUAL "ON")
      message(FATAL_ERROR
        "OpenCV (core, imgproc) not found and ATARI_VEC_OPENCV=ON. Install it with "
        "`apt-get install libopencv-imgproc-dev` on Debian/Ubuntu, or build with the vcpkg "
        "toolchain (vcpkg.json lists opencv4).")
    endif()
    message(STATUS "OpenCV: not found; integer-factor and enlarging resizes will be refused "
                   "(install libopencv-imgproc-dev and rebuild to allow them)")
    return()
  endif()
  message(STATUS "OpenCV: ${OPENCV_IMGPROC_LIBRARY}")
  target_include_directories(atari_vec_opencv SYSTEM INTERFACE ${OPENCV_IMGPROC_INCLUDE_DIR})
  target_link_libraries(atari_vec_opencv INTERFACE ${OPENCV_IMGPROC_LIBRARY} ${OPENCV_CORE_LIBRARY})
endif()
target_compile_definitions(atari_vec_opencv INTERFACE ATARI_VEC_HAVE_OPENCV=1)
