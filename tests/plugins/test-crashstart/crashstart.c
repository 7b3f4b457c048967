/*
 * test-crashstart: says so on stderr and exits with status 3 at once, every
 * time. The host must restart it with backoff, then disable it.
 */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "{\"level\":\"error\",\"msg\":\"crashing on purpose\"}\n");
    return 3;
}
