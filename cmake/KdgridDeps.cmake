# Finds every dependency and prints one found/not-found line for each.

function(kdgrid_report name found detail)
  if(found)
    message(STATUS "kdgrid: [found]     ${name} ${detail}")
  else()
    message(STATUS "kdgrid: [not found] ${name} ${detail}")
  endif()
endfunction()

find_package(MPI REQUIRED COMPONENTS C)
kdgrid_report("MPI" MPI_C_FOUND "${MPI_C_VERSION} (${MPI_C_LIBRARY_VERSION_STRING})")

# Parallel HDF5 has the C API only; asking for CXX too would silently mix the serial
# C++ wrapper with the parallel C library (see shared/ENVIRONMENT.md).
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
kdgrid_report("HDF5" HDF5_FOUND "${HDF5_VERSION} parallel=${HDF5_IS_PARALLEL}")
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "kdgrid needs the parallel HDF5 build (Debian: libhdf5-openmpi-dev)")
endif()
add_library(kdgrid_hdf5 INTERFACE)
target_include_directories(kdgrid_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS})
target_link_libraries(kdgrid_hdf5 INTERFACE ${HDF5_C_LIBRARIES} MPI::MPI_C)
target_compile_definitions(kdgrid_hdf5 INTERFACE ${HDF5_C_DEFINITIONS})

find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
kdgrid_report("Boost.Program_options" Boost_FOUND "${Boost_VERSION}")

find_package(fmt REQUIRED)
kdgrid_report("fmt" fmt_FOUND "${fmt_VERSION}")

find_package(nlohmann_json 3 REQUIRED)
kdgrid_report("nlohmann_json" nlohmann_json_FOUND "${nlohmann_json_VERSION}")

find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
kdgrid_report("PCRE2" PCRE2_FOUND "${PCRE2_VERSION}")

# SHA-256 of tokenizer files (and checkpoints): libcrypto only.
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
kdgrid_report("OpenSSL libcrypto" OPENSSL_FOUND "${OPENSSL_VERSION}")

find_package(Threads REQUIRED)

find_package(OpenMP REQUIRED COMPONENTS CXX)
kdgrid_report("OpenMP" OpenMP_CXX_FOUND "${OpenMP_CXX_VERSION}")

# Debian's dnnl-config.cmake insists on OpenCL, which the CPU build never uses: a small
# imported target instead.
find_path(DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp)
find_library(DNNL_LIBRARY NAMES dnnl)
if(DNNL_INCLUDE_DIR AND DNNL_LIBRARY)
  file(STRINGS "${DNNL_INCLUDE_DIR}/oneapi/dnnl/dnnl_version.h" _dnnl_ver REGEX "define DNNL_VERSION_(MAJOR|MINOR|PATCH) ")
  string(REGEX REPLACE "[^0-9;]" "" _dnnl_ver "${_dnnl_ver}")
  string(REPLACE ";" "." dnnl_VERSION "${_dnnl_ver}")
  add_library(kdgrid_dnnl INTERFACE)
  target_include_directories(kdgrid_dnnl SYSTEM INTERFACE ${DNNL_INCLUDE_DIR})
  target_link_libraries(kdgrid_dnnl INTERFACE ${DNNL_LIBRARY})
endif()
kdgrid_report("oneDNN" DNNL_LIBRARY "${dnnl_VERSION}")
if(NOT DNNL_LIBRARY)
  message(FATAL_ERROR "oneDNN not found (Debian: libdnnl-dev)")
endif()

if(KDGRID_TESTS)
  find_package(GTest REQUIRED)
  kdgrid_report("GoogleTest" GTest_FOUND "${GTest_VERSION}")
  find_program(KDGRID_SYSTEM_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  kdgrid_report("Debian python3 (h5py/torch tests)" KDGRID_SYSTEM_PYTHON "${KDGRID_SYSTEM_PYTHON}")
endif()

# CUDA toolchain: AUTO turns it on when nvcc exists (also at /usr/local/cuda, which is not on PATH).
set(KDGRID_HAVE_CUDA OFF)
if(NOT KDGRID_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # `native` fails without a GPU; Hopper (H100/H200) is the target.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(KDGRID_HAVE_CUDA ON)
  elseif(KDGRID_CUDA STREQUAL "ON")
    message(FATAL_ERROR "KDGRID_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
kdgrid_report("CUDA toolchain (nvcc; no CUDA code is built yet)" KDGRID_HAVE_CUDA
              "${CMAKE_CUDA_COMPILER_VERSION} archs=${CMAKE_CUDA_ARCHITECTURES}")
