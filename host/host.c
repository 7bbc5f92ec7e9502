/* host.c: placeholder. */
#include <config.h>
