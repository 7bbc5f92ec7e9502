/* main.c: the berth executable. Everything else is in cli.c and below. */
#include <config.h>

#include "cli.h"

int main(int argc, char **argv)
{
    return berth_cli_main(argc, argv);
}
