// The C++ side of the benchmark shim (see shim.h): registers every C
// definition with google-benchmark and forwards the State calls.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdio>
#include <utility>
#include <vector>

#include "shim.h"

static ntmm_bench_def_t *g_defs;

extern "C" void ntmm_bench_register(ntmm_bench_def_t *def)
{
	def->next = g_defs;
	g_defs = def;
}

static benchmark::State &S(ntmm_bench_state_t *st)
{
	return *reinterpret_cast<benchmark::State *>(st);
}

extern "C" {
int ntmm_bench_keep_running_batch(ntmm_bench_state_t *st, uint64_t batch)
{
	return S(st).KeepRunningBatch(static_cast<benchmark::IterationCount>(batch));
}
int ntmm_bench_keep_running(ntmm_bench_state_t *st)
{
	return S(st).KeepRunning();
}
int ntmm_bench_thread_index(ntmm_bench_state_t *st)
{
	return S(st).thread_index();
}
int ntmm_bench_threads(ntmm_bench_state_t *st)
{
	return S(st).threads();
}
int64_t ntmm_bench_range(ntmm_bench_state_t *st)
{
	return S(st).range(0);
}
uint64_t ntmm_bench_iterations(ntmm_bench_state_t *st)
{
	return static_cast<uint64_t>(S(st).iterations());
}
void ntmm_bench_set_items(ntmm_bench_state_t *st, int64_t items)
{
	S(st).SetItemsProcessed(items);
}
void ntmm_bench_set_bytes(ntmm_bench_state_t *st, int64_t bytes)
{
	S(st).SetBytesProcessed(bytes);
}
void ntmm_bench_pause(ntmm_bench_state_t *st)
{
	S(st).PauseTiming();
}
void ntmm_bench_resume(ntmm_bench_state_t *st)
{
	S(st).ResumeTiming();
}
void ntmm_bench_counter(ntmm_bench_state_t *st, const char *name, double value)
{
	S(st).counters[name] = benchmark::Counter(value);
}
void ntmm_bench_skip(ntmm_bench_state_t *st, const char *why)
{
	S(st).SkipWithError(why);
}
}

// Setup/Teardown callbacks in google-benchmark 1.7 are plain function
// pointers without user data, so each registered definition gets its own
// trampoline from a table instantiated at compile time.
static std::vector<ntmm_bench_def_t *> g_ordered;

template <size_t I> static void setup_tramp(const benchmark::State &st)
{
	ntmm_bench_def_t *d = g_ordered[I];
	if (d->setup)
		d->ctx = d->setup(st.threads());
}

template <size_t I> static void teardown_tramp(const benchmark::State &)
{
	ntmm_bench_def_t *d = g_ordered[I];
	if (d->teardown)
		d->teardown(d->ctx);
	d->ctx = nullptr;
}

using tramp_fn = void (*)(const benchmark::State &);
constexpr size_t kMaxDefs = 256;

template <size_t... I>
static constexpr std::array<tramp_fn, sizeof...(I)> setup_table(std::index_sequence<I...>)
{
	return {{&setup_tramp<I>...}};
}
template <size_t... I>
static constexpr std::array<tramp_fn, sizeof...(I)> teardown_table(std::index_sequence<I...>)
{
	return {{&teardown_tramp<I>...}};
}
static constexpr auto kSetup = setup_table(std::make_index_sequence<kMaxDefs>{});
static constexpr auto kTeardown = teardown_table(std::make_index_sequence<kMaxDefs>{});

int main(int argc, char **argv)
{
	// Register in source order (the list was built in reverse).
	for (ntmm_bench_def_t *d = g_defs; d; d = d->next)
		g_ordered.insert(g_ordered.begin(), d);
	if (g_ordered.size() > kMaxDefs) {
		fprintf(stderr, "ntmm-bench: more than %zu benchmarks; raise kMaxDefs\n", kMaxDefs);
		return 1;
	}
	for (size_t i = 0; i < g_ordered.size(); i++) {
		ntmm_bench_def_t *d = g_ordered[i];
		auto *b = benchmark::RegisterBenchmark(d->name, [d](benchmark::State &st) {
			d->run(reinterpret_cast<ntmm_bench_state_t *>(&st), d->ctx);
		});
		b->Setup(kSetup[i])->Teardown(kTeardown[i]);
		if (d->has_arg)
			b->Arg(d->arg);
		if (d->min_time > 0)
			b->MinTime(d->min_time);
		if (d->real_time)
			b->UseRealTime();
		if (d->threads[0]) {
			for (int t : d->threads)
				if (t)
					b->Threads(t);
			b->UseRealTime();
		}
	}
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
