# Provides the target `atari_vec::opencv` (core + imgproc).
# vcpkg (opencv4 in vcpkg.json) or any OpenCV with a CMake package is found by
# find_package; Debian's libopencv-imgproc-dev ships headers and libraries without the
# CMake package, so those are located directly.
find_package(OpenCV QUIET COMPONENTS core imgproc)
add_library(atari_vec_opencv INTERFACE)
if(OpenCV_FOUND)
  message(STATUS "OpenCV: ${OpenCV_VERSION} from ${OpenCV_DIR}")
  target_include_directories(atari_vec_opencv SYSTEM INTERFACE ${OpenCV_INCLUDE_DIRS})
  target_link_libraries(atari_vec_opencv INTERFACE opencv_core opencv_imgproc)
else()
  find_path(OPENCV_IMGPROC_INCLUDE_DIR opencv2/imgproc.hpp PATH_SUFFIXES opencv4)
  find_library(OPENCV_CORE_LIBRARY opencv_core)
  find_library(OPENCV_IMGPROC_LIBRARY opencv_imgproc)
  if(NOT OPENCV_IMGPROC_INCLUDE_DIR OR NOT OPENCV_CORE_LIBRARY OR NOT OPENCV_IMGPROC_LIBRARY)
    message(FATAL_ERROR
      "OpenCV (core, imgproc) not found. Install it with `apt-get install libopencv-imgproc-dev` "
      "on Debian/Ubuntu, or build with the vcpkg toolchain (vcpkg.json lists opencv4).")
  endif()
  message(STATUS "OpenCV: ${OPENCV_IMGPROC_LIBRARY}")
  target_include_directories(atari_vec_opencv SYSTEM INTERFACE ${OPENCV_IMGPROC_INCLUDE_DIR})
  target_link_libraries(atari_vec_opencv INTERFACE ${OPENCV_IMGPROC_LIBRARY} ${OPENCV_CORE_LIBRARY})
endif()
add_library(atari_vec::opencv ALIAS atari_vec_opencv)
