/* Unit tests for tarball: placeholder until they land. */
#include <config.h>

#include "testlib.h"

static void test_placeholder(void)
{
    CU_PASS("placeholder");
}

static int add_suites(void)
{
    static const berth_test_case cases[] = {{"placeholder", test_placeholder}, {NULL, NULL}};
    return berth_test_add_suite("tarball", NULL, NULL, cases);
}

int main(int argc, char **argv)
{
    return berth_test_main(argc, argv, add_suites);
}
