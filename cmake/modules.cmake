# acme_sidecar_module(<name> SOURCES ... DEPS ...)
# One folder = one module = one static library `acme_sidecar_<name>` with alias `sidecar::<name>`.
# Headers are included as "<module>/<file>.hpp" relative to sidecar/ (or the repository root for metrics/).
function(acme_sidecar_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(acme_sidecar_${name} STATIC ${M_SOURCES})
  add_library(sidecar::${name} ALIAS acme_sidecar_${name})
  target_include_directories(acme_sidecar_${name} PUBLIC ${PROJECT_SOURCE_DIR}/sidecar ${PROJECT_SOURCE_DIR})
  target_link_libraries(acme_sidecar_${name} PUBLIC ${M_DEPS})
endfunction()

# acme_sidecar_test(<name> SOURCES ... DEPS ... [LABELS ...])
# A Catch2 executable whose test cases are registered one by one with ctest.
function(acme_sidecar_test name)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE acme_sidecar_catch_main ${T_DEPS})
  # -w NoTests: a filter that matches nothing (e.g. a name CMake split at ";") fails instead of passing.
  catch_discover_tests(${name} EXTRA_ARGS -w NoTests PROPERTIES LABELS "${T_LABELS}")
endfunction()
