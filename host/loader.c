/* loader.c: placeholder. */
#include <config.h>
