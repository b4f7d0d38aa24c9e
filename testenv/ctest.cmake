# testenv/ctest.cmake — CTest integration of the test environment.
#
# include() it once (e.g. from tests/integration/CMakeLists.txt). It adds
#   testenv_start  (FIXTURES_SETUP testenv)    testenv/env start STATE
#   testenv_stop   (FIXTURES_CLEANUP testenv)  testenv/env stop STATE
#   testenv_smoke  the smoke test tests/integration/testenv_smoke.sh
# and the function
#   pwsync_integration_test(NAME COMMAND cmd [args...]
#                           [WORKING_DIRECTORY dir] [TIMEOUT seconds]
#                           [LABELS extra...] [ENVIRONMENT NAME=value...])
# which adds a test that requires the running environment, labelled
# `integration`, with PWSYNC_TESTENV_STATE pointing at the state folder
# (source or parse $PWSYNC_TESTENV_STATE/env.sh).
#
# The whole ctest run must happen inside ONE private namespace, so that the
# servers started by testenv_start are reachable by every test:
#   testenv/netns ctest --test-dir build -L integration
# Outside of it, testenv_start fails with a clear message.

set(PWSYNC_TESTENV_DIR "${CMAKE_CURRENT_LIST_DIR}")
set(PWSYNC_TESTENV_STATE "${CMAKE_BINARY_DIR}/testenv-state")

add_test(NAME testenv_start
         COMMAND "${PWSYNC_TESTENV_DIR}/env" start "${PWSYNC_TESTENV_STATE}")
add_test(NAME testenv_stop
         COMMAND "${PWSYNC_TESTENV_DIR}/env" stop "${PWSYNC_TESTENV_STATE}")
set_tests_properties(testenv_start PROPERTIES
    FIXTURES_SETUP testenv
    LABELS integration
    # Cold start provisions Samba (~10 s here); warm start takes ~1.5 s.
    TIMEOUT 300)
set_tests_properties(testenv_stop PROPERTIES
    FIXTURES_CLEANUP testenv
    LABELS integration
    TIMEOUT 120)

function(pwsync_integration_test name)
    cmake_parse_arguments(PARSE_ARGV 1 ARG "" "WORKING_DIRECTORY;TIMEOUT"
                          "COMMAND;LABELS;ENVIRONMENT")
    if(NOT ARG_COMMAND)
        message(FATAL_ERROR "pwsync_integration_test(${name}): COMMAND is required")
    endif()
    if(ARG_UNPARSED_ARGUMENTS)
        message(FATAL_ERROR "pwsync_integration_test(${name}): unknown arguments: ${ARG_UNPARSED_ARGUMENTS}")
    endif()
    if(ARG_WORKING_DIRECTORY)
        add_test(NAME "${name}" COMMAND ${ARG_COMMAND}
                 WORKING_DIRECTORY "${ARG_WORKING_DIRECTORY}")
    else()
        add_test(NAME "${name}" COMMAND ${ARG_COMMAND})
    endif()
    set(labels integration ${ARG_LABELS})
    set(env "PWSYNC_TESTENV_STATE=${PWSYNC_TESTENV_STATE}" ${ARG_ENVIRONMENT})
    set_tests_properties("${name}" PROPERTIES
        FIXTURES_REQUIRED testenv
        LABELS "${labels}"
        ENVIRONMENT "${env}")
    if(ARG_TIMEOUT)
        set_tests_properties("${name}" PROPERTIES TIMEOUT "${ARG_TIMEOUT}")
    endif()
endfunction()

pwsync_integration_test(testenv_smoke
    COMMAND "${PWSYNC_TESTENV_DIR}/../tests/integration/testenv_smoke.sh"
    TIMEOUT 120)
# The check password script slot (cps-hook.d/hook) is one per DC: tests that
# install a hook take this lock so that they do not run at the same time.
set_tests_properties(testenv_smoke PROPERTIES RESOURCE_LOCK testenv-cps-hook)
