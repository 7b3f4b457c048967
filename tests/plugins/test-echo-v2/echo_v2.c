/* test-echo at version 2.0.0, for the host's reload test. */
#define ECHO_VERSION "2.0.0"
#include "../test-echo/echo.c"
