/*
 * The system-thread table shared by `ntmm info` and `ntmm demo`: every
 * running system thread with the NT priority it asked for and the Linux
 * scheduling it actually obtained (and why, when degraded).
 */
#include "engine.h"
#include "tools.h"

static void json_str(FILE *o, const char *s)
{
	fputc('"', o);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', o);
		if ((unsigned char)*s >= 0x20)
			fputc(*s, o);
	}
	fputc('"', o);
}

static const char *policy_name(int p)
{
	switch (p) {
	case NTMM__SCHED_FIFO:
		return "SCHED_FIFO";
	case NTMM__SCHED_OTHER:
		return "SCHED_OTHER";
	case NTMM__SCHED_IDLE:
		return "SCHED_IDLE";
	default:
		return "unknown";
	}
}

void ntmm__tool_print_threads(ntmm_engine_t *e, FILE *o, bool json)
{
	ntmm__systhread_ref_t refs[64];
	size_t n = ntmm__systhreads_list(e, refs, 64);
	if (n > 64)
		n = 64;
	if (json) {
		fprintf(o, "[");
		for (size_t i = 0; i < n; i++) {
			const ntmm__thread_t *t = refs[i].t;
			fprintf(o, "%s{\"name\": ", i ? ", " : "");
			json_str(o, t->name);
			fprintf(o, ", \"role\": ");
			json_str(o, refs[i].role);
			fprintf(o,
			        ", \"node\": %d, \"nt_priority\": %d, \"policy\": \"%s\", "
			        "\"rt_priority\": %d, \"nice\": %d, \"cpu\": %d, \"degraded\": %s, "
			        "\"degraded_reason\": ",
			        refs[i].node, t->nt_priority, policy_name(t->policy),
			        t->rt_priority, t->nice, t->cpu, t->degraded ? "true" : "false");
			json_str(o, t->degraded_reason);
			fprintf(o, "}");
		}
		fprintf(o, "]");
		return;
	}
	fprintf(o, "  %-16s %-22s %-4s %-22s %s\n", "thread", "role", "NT", "obtained", "note");
	if (!n)
		fprintf(o, "  (system threads not started)\n");
	for (size_t i = 0; i < n; i++) {
		const ntmm__thread_t *t = refs[i].t;
		char pol[48];
		ntmm__thread_policy_str(t, pol, sizeof(pol));
		fprintf(o, "  %-16s %-22s %-4d %-22s %s\n", t->name, refs[i].role, t->nt_priority,
		        pol, t->degraded ? t->degraded_reason : "");
	}
}
