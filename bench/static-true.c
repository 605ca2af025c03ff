/*
 * /bin/true without the dynamic loader: exits 0 at once. hook-latency.ts compiles it
 * static-pie, as native/Makefile links the hook by default, and runs it from launcher.c
 * beside /bin/true: what a static executable saves any program slurmctld starts, so that
 * the hook's own cost can be read against either floor (docs/benchmarks.md, section 1).
 */
int main(void)
{
	return 0;
}
