/*
 * The system-thread table shared by `ntmm info` and `ntmm demo`: every
 * running system thread with the NT priority it asked for and the Linux
 * scheduling it actually obtained (and why, when degraded).
 */
#include "engine.h"
#include "tools.h"

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

/* The running system threads (at most max of them). */
static size_t list_threads(ntmm_engine_t *e, ntmm__systhread_ref_t *refs, size_t max)
{
	size_t n = ntmm__systhreads_list(e, refs, max);
	return n > max ? max : n;
}

json_object *ntmm__tool_threads_json(ntmm_engine_t *e)
{
	ntmm__systhread_ref_t refs[64];
	size_t n = list_threads(e, refs, 64);
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		const ntmm__thread_t *t = refs[i].t;
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", ntmm__tool_json_str(t->name));
		json_object_object_add(o, "role", ntmm__tool_json_str(refs[i].role));
		json_object_object_add(o, "node", json_object_new_int(refs[i].node));
		json_object_object_add(o, "nt_priority", json_object_new_int(t->nt_priority));
		json_object_object_add(o, "policy", json_object_new_string(policy_name(t->policy)));
		json_object_object_add(o, "rt_priority", json_object_new_int(t->rt_priority));
		json_object_object_add(o, "nice", json_object_new_int(t->nice));
		json_object_object_add(o, "cpu", json_object_new_int(t->cpu));
		json_object_object_add(o, "degraded", json_object_new_boolean(t->degraded));
		json_object_object_add(o, "degraded_reason",
		                       ntmm__tool_json_str(t->degraded_reason));
		json_object_array_add(a, o);
	}
	return a;
}

void ntmm__tool_print_threads(ntmm_engine_t *e, FILE *o)
{
	ntmm__systhread_ref_t refs[64];
	size_t n = list_threads(e, refs, 64);
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
