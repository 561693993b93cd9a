/*
 * The `ntmm` command's subcommands (tools/ntmm.c dispatches). Each takes
 * the arguments after its name and returns the process exit status.
 */
#ifndef NTMM_TOOLS_H
#define NTMM_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <ntmm.h>

int ntmm__tool_info(int argc, char **argv);
int ntmm__tool_demo(int argc, char **argv);

/* threads.c: the system threads with the scheduling they obtained, as a
   table or (json) one JSON array. */
void ntmm__tool_print_threads(ntmm_engine_t *e, FILE *o, bool json);

/* Shared option parsing: "--name=value" → value, or NULL. */
const char *ntmm__tool_opt(const char *arg, const char *name);
/* "64M" → bytes (K/M/G/T suffixes); 0 on a malformed value. */
size_t ntmm__tool_size(const char *s);

#endif
