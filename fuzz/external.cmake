# Included by the main build: when clang++ and its libFuzzer runtime are
# installed (Debian: clang, libclang-rt-14-dev), the fuzzers build in their
# own clang tree next to this one (<build>-fuzz, FERRY_FUZZ=ON) as part of
# `all`, and each runs briefly as a test, so a parser crash fails `make test`.
find_program(FERRY_CLANGXX clang++)
if(NOT FERRY_CLANGXX)
  message(STATUS "fuzzers: no clang++, fuzz tests skipped")
  return()
endif()
execute_process(COMMAND ${FERRY_CLANGXX} -print-runtime-dir
  OUTPUT_VARIABLE _runtime_dir OUTPUT_STRIP_TRAILING_WHITESPACE)
file(GLOB _fuzzer_runtime "${_runtime_dir}/libclang_rt.fuzzer-*.a")
if(NOT _fuzzer_runtime)
  message(STATUS "fuzzers: no libFuzzer runtime in '${_runtime_dir}', fuzz tests skipped")
  return()
endif()

set(FERRY_FUZZ_BUILD_DIR "${CMAKE_BINARY_DIR}-fuzz" CACHE PATH "The fuzzers' clang build tree")
set(FERRY_FUZZ_TEST_SECONDS 10 CACHE STRING "How long each fuzz test fuzzes")

include(ExternalProject)
ExternalProject_Add(ferry_fuzzers
  SOURCE_DIR ${CMAKE_SOURCE_DIR}
  BINARY_DIR ${FERRY_FUZZ_BUILD_DIR}
  CMAKE_GENERATOR ${CMAKE_GENERATOR}
  CMAKE_ARGS -DCMAKE_CXX_COMPILER=${FERRY_CLANGXX} -DFERRY_FUZZ=ON
    -DCMAKE_BUILD_TYPE=RelWithDebInfo
  INSTALL_COMMAND ""
  # Ninja inside decides what is stale; without this a source edit would not
  # rebuild the fuzzers.
  BUILD_ALWAYS ON)

file(GLOB _fuzzers CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
foreach(_fuzzer ${_fuzzers})
  get_filename_component(_name ${_fuzzer} NAME_WE)
  add_test(NAME fuzz.${_name}
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/run.sh ${FERRY_FUZZ_BUILD_DIR}
      ${FERRY_FUZZ_TEST_SECONDS} ${_name})
  set_tests_properties(fuzz.${_name} PROPERTIES
    TIMEOUT 120 LABELS fuzz)
endforeach()
