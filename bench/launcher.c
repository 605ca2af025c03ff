/*
 * Runs a program `runs` times in a row the way slurmctld runs jobcomp/script and
 * PrologSlurmctld: fork, exec, wait; each run with JOBID (or SLURM_JOB_ID, when the
 * environment has it) set to first_job_id + i. Prints one line per run: milliseconds from
 * fork to the end of waitpid. Used by hook-latency.ts (a Node.js spawn() costs over 1 ms
 * of its own, which slurmctld's fork/exec does not).
 *
 *   launcher <runs> <first_job_id> <program>
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *id_var = getenv("SLURM_JOB_ID") ? "SLURM_JOB_ID" : "JOBID";
	long runs, first, i;
	char id[32];

	if (argc != 4) {
		fprintf(stderr, "usage: launcher <runs> <first_job_id> <program>\n");
		return 64;
	}
	runs = atol(argv[1]);
	first = atol(argv[2]);
	for (i = 0; i < runs; i++) {
		struct timespec a, b;
		int st;
		pid_t pid;

		snprintf(id, sizeof(id), "%ld", first + i);
		setenv(id_var, id, 1);
		clock_gettime(CLOCK_MONOTONIC, &a);
		pid = fork();
		if (pid == 0) {
			execl(argv[3], argv[3], (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "launcher: run %ld of %s failed\n", i, argv[3]);
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		printf("%.4f\n", (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
	}
	return 0;
}
