/* berth/exec.h: placeholder until the exec helpers land. */
