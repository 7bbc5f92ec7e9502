/* The command line (cli.c). */
#ifndef BERTH_CLI_H
#define BERTH_CLI_H

/* Parse the options, build a host, run one command; returns the exit status. */
int berth_cli_main(int argc, char **argv);

#endif /* BERTH_CLI_H */
