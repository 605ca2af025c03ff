/*
 * jobcompd-hook: hands a Slurm job record to jobcompd and waits until it is committed.
 *
 * Install it as JobCompLoc (JobCompType=jobcomp/script), as PrologSlurmctld (job start
 * records) and, if wanted, as EpilogSlurmctld. Slurm runs it with no arguments and a fresh
 * environment that holds the job's variables; the hook forwards that environment as is.
 *
 *   1. connect to jobcompd's Unix socket, send the environment, wait for the answer that
 *      the record is committed (at most timeout_ms);
 *   2. if that fails for any reason, write the record into the spool directory atomically
 *      (temporary file, fsync, rename, fsync of the directory): jobcompd imports it later.
 *      The directory must be the hook user's own, writable by nobody else, and not reached
 *      through a symbolic link; files are created O_EXCL|O_NOFOLLOW under a random name
 *      that includes the host name (several controllers may share one spool);
 *   3. exit 0 once the record is committed or spooled. In prolog/epilog context it always
 *      exits 0, because a non-zero PrologSlurmctld exit requeues or holds the job.
 *
 * deadline_s bounds the whole run: slurmctld waits for this hook, so whatever hangs (the
 * socket, a frozen or stalled spool disk), the hook exits by then, 0 in prolog/epilog
 * context. An alarm() at the deadline ends the hook. The socket exchange only ever waits
 * in poll(), which a signal interrupts, so it runs in the hook itself (no fork on the
 * common path: docs/benchmarks.md, hook latency). The spool write can block inside the
 * kernel, where no signal handler runs, so it runs in a child process that the hook only
 * waits for: at the deadline the hook kills it and exits, even if the child is stuck.
 * The socket gets at most half of deadline_s, so the spool write has the other half.
 *
 * Configuration: "<argv[0]>.conf" if it exists, else /etc/jobcompd/hook.conf, else the
 * defaults below. Lines "key = value", '#' comments. Keys: socket, spool, timeout_ms,
 * deadline_s.
 *
 * Wire format (both the socket request and a spool file):
 *   "JCH1" | uint32 big-endian length | environment: "KEY=VALUE" entries, each NUL-ended
 * Answer: one status byte ('A' committed, 'Q' kept in quarantine, 'D' duplicate of a
 * record already committed, 'I' ignored by configuration, 'E' not committed)
 *   | uint32 big-endian length | a UTF-8 message.
 *
 * Only libc, and none of its name service lookups: native/Makefile links it static-pie by
 * default (docs/install.md, "The native hook's build"). Failures are logged to syslog
 * (ident jobcompd-hook, facility daemon).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONF "/etc/jobcompd/hook.conf"
#define DEFAULT_SOCKET "/run/jobcompd/hook.sock"
#define DEFAULT_SPOOL "/var/spool/jobcompd"
#define DEFAULT_TIMEOUT_MS 1000
#define DEFAULT_DEADLINE_S 10
#define MAGIC "JCH1"
#define MAX_ANSWER 4096

extern char **environ;

enum context { CTX_JOBCOMP, CTX_PROLOG, CTX_EPILOG, CTX_UNKNOWN };

struct config {
	char socket[108];
	char spool[4096];
	long timeout_ms;
	long deadline_s;
};

struct buffer {
	char *data;
	size_t len;
	size_t cap;
};

static void logmsg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsyslog(prio, fmt, ap);
	va_end(ap);
}

static int append(struct buffer *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *d;

		while (cap < b->len + n)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src);
}

/* Returns 0 if the file was read, -1 if it does not exist; unknown keys are ignored. */
static int read_config(const char *path, struct config *cfg)
{
	char line[4200];
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *hash = strchr(line, '#');
		char *eq, *key, *val;

		if (hash)
			*hash = '\0';
		eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		key = trim(line);
		val = trim(eq + 1);
		if (!strcmp(key, "socket"))
			copy(cfg->socket, sizeof(cfg->socket), val);
		else if (!strcmp(key, "spool"))
			copy(cfg->spool, sizeof(cfg->spool), val);
		else if (!strcmp(key, "timeout_ms"))
			cfg->timeout_ms = strtol(val, NULL, 10);
		else if (!strcmp(key, "deadline_s"))
			cfg->deadline_s = strtol(val, NULL, 10);
	}
	fclose(f);
	return 0;
}

static void load_config(const char *argv0, struct config *cfg)
{
	char beside[4200];

	copy(cfg->socket, sizeof(cfg->socket), DEFAULT_SOCKET);
	copy(cfg->spool, sizeof(cfg->spool), DEFAULT_SPOOL);
	cfg->timeout_ms = DEFAULT_TIMEOUT_MS;
	cfg->deadline_s = DEFAULT_DEADLINE_S;
	snprintf(beside, sizeof(beside), "%s.conf", argv0);
	if (read_config(beside, cfg) < 0)
		read_config(DEFAULT_CONF, cfg);
	if (cfg->timeout_ms <= 0)
		cfg->timeout_ms = DEFAULT_TIMEOUT_MS;
	if (cfg->deadline_s <= 0)
		cfg->deadline_s = DEFAULT_DEADLINE_S;
	if (cfg->timeout_ms > cfg->deadline_s * 500)
		cfg->timeout_ms = cfg->deadline_s * 500;
}

/* the exit status when deadline_s passes, and the process doing the work; set before alarm() */
static volatile sig_atomic_t deadline_status = 1;
static volatile pid_t worker = -1;

static void deadline_passed(int sig)
{
	static const char msg[] = "jobcompd-hook: deadline_s passed; giving up\n";

	(void)sig;
	/* only async-signal-safe calls here: no syslog */
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nothing left to tell */
	}
	if (worker > 0)
		kill(worker, SIGKILL);
	_exit(deadline_status);
}

/* From now on the hook exits with `status` at the deadline, whatever it is doing. */
static void arm_deadline(long seconds, int status)
{
	struct sigaction sa = { .sa_handler = deadline_passed };

	deadline_status = status;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm((unsigned)seconds);
}

/*
 * Returns in a child process that does the rest of the work (the spool write); this process
 * only waits for it, and exits at the deadline armed above if the child has not. A process
 * blocked inside the kernel (a write on a frozen or stalled file system) runs no signal
 * handler and cannot even be killed until the kernel lets it go, so the alarm must go to
 * one that is not blocked. The child logs only to syslog and lets go of stdin, stdout and
 * stderr: slurmctld may read the hook's output until EOF, which a child that outlives the
 * hook must not hold back. If fork() fails, the work runs here under the alarm alone.
 */
static void work_in_child(int status)
{
	pid_t hook = getpid();
	pid_t child;
	int st, fd;

	child = fork();
	if (child == 0) {
		/* killing the hook (as slurmctld or a power-cut test does) kills the work too */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != hook)
			_exit(status);
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		for (st = 0; st <= 2; st++)
			if (fd < 0 || dup2(fd, st) < 0)
				close(st);
		if (fd > 2)
			close(fd);
		return;
	}
	if (child < 0)
		return;
	worker = child;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			_exit(status);
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : status);
}

static enum context detect_context(void)
{
	const char *ctx = getenv("SLURM_SCRIPT_CONTEXT");

	if (ctx && !strcmp(ctx, "prolog_slurmctld"))
		return CTX_PROLOG;
	if (ctx && !strcmp(ctx, "epilog_slurmctld"))
		return CTX_EPILOG;
	if (getenv("JOBID"))
		return CTX_JOBCOMP;
	return CTX_UNKNOWN;
}

static const char *job_id(void)
{
	const char *id = getenv("JOBID");

	if (!id)
		id = getenv("SLURM_JOB_ID");
	return id ? id : "unknown";
}

/* The message: magic, length, then every environment entry NUL-terminated, plus the time
 * the hook ran (jobcompd uses it as the start time of prolog records). */
static int build_message(struct buffer *msg)
{
	struct timespec now;
	char stamp[64];
	uint32_t len = 0, be;
	char **e;

	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(stamp, sizeof(stamp), "JOBCOMPD_HOOK_TIME=%lld.%09ld", (long long)now.tv_sec, now.tv_nsec);
	if (append(msg, MAGIC, 4) || append(msg, &len, 4))
		return -1;
	for (e = environ; *e; e++)
		if (strncmp(*e, "JOBCOMPD_HOOK_TIME=", 19) && append(msg, *e, strlen(*e) + 1))
			return -1;
	if (append(msg, stamp, strlen(stamp) + 1))
		return -1;
	be = htonl((uint32_t)(msg->len - 8));
	memcpy(msg->data + 4, &be, 4);
	return 0;
}

static long remaining_ms(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

static int wait_fd(int fd, short events, const struct timespec *deadline)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		long ms = remaining_ms(deadline);
		int r;

		if (ms <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		r = poll(&p, 1, (int)ms);
		if (r > 0)
			return 0;
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

static int send_all(int fd, const char *p, size_t n, const struct timespec *deadline)
{
	while (n > 0) {
		ssize_t w;

		if (wait_fd(fd, POLLOUT, deadline))
			return -1;
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int recv_all(int fd, char *p, size_t n, const struct timespec *deadline)
{
	while (n > 0) {
		ssize_t r;

		if (wait_fd(fd, POLLIN, deadline))
			return -1;
		r = recv(fd, p, n, 0);
		if (r == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Returns the answer's status byte, or 0 when there was no complete answer (errno set). */
static char deliver(const struct config *cfg, const struct buffer *msg, char *text, size_t text_size)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timespec deadline;
	unsigned char head[5];
	uint32_t len;
	char status = 0;
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += cfg->timeout_ms / 1000;
	deadline.tv_nsec += (cfg->timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	copy(addr.sun_path, sizeof(addr.sun_path), cfg->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 &&
	    (errno != EINPROGRESS || wait_fd(fd, POLLOUT, &deadline)))
		goto out;
	if (send_all(fd, msg->data, msg->len, &deadline) || recv_all(fd, (char *)head, 5, &deadline))
		goto out;
	memcpy(&len, head + 1, 4);
	len = ntohl(len);
	if (len >= text_size)
		len = (uint32_t)text_size - 1;
	if (recv_all(fd, text, len, &deadline))
		goto out;
	text[len] = '\0';
	status = (char)head[0];
out:
	close(fd);
	return status;
}

/*
 * A part of a spool file name: letters, digits, '-' and '_' kept, '.' too if allowed (a
 * host name), anything else (a '/' above all) made '_'.
 */
static void name_part(char *dst, size_t size, const char *src, int allow_dot)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < size; i++) {
		char c = src[i];
		int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
			   (c == '.' && allow_dot);

		dst[i] = keep ? c : '_';
	}
	dst[i] = '\0';
}

static unsigned long long random64(void)
{
	unsigned long long r;
	struct timespec now;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		return r;
	clock_gettime(CLOCK_REALTIME, &now);
	return ((unsigned long long)now.tv_nsec << 32) ^ (unsigned long long)now.tv_sec ^ ((unsigned long long)getpid() << 16);
}

/*
 * The spool directory, opened without following a symbolic link, and only if it is the
 * hook user's own and nobody else may write to it: a directory others control could hold
 * a planted link that redirects the write. Returns its fd, or -1 with *why set.
 */
static int open_spool_dir(const char *dir, const char **why)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*why = strerror(errno);
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*why = errno == ENOTDIR || errno == ELOOP ? "not a directory (or a symbolic link)" : strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		*why = strerror(errno);
	} else if (st.st_uid != geteuid()) {
		*why = "owned by another user";
	} else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		*why = "writable by group or others";
	} else {
		return fd;
	}
	close(fd);
	return -1;
}

/* temp file, write, fsync, rename, fsync the directory: the file appears whole or not at all */
static int spool(const struct config *cfg, const struct buffer *msg, const char *kind, const char **why)
{
	char tmp[512], final[512], host[256], id[64];
	unsigned long long r = random64();
	struct timespec now;
	size_t off = 0;
	int dfd, fd, created = 0;

	dfd = open_spool_dir(cfg->spool, why);
	if (dfd < 0)
		return -1;
	if (gethostname(tmp, sizeof(tmp)) < 0)
		snprintf(tmp, sizeof(tmp), "unknown");
	tmp[sizeof(tmp) - 1] = '\0';
	/* dots in the host name are harmless: jobcompd reads only the first two fields of a name */
	name_part(host, sizeof(host), tmp, 1);
	name_part(id, sizeof(id), job_id(), 0);
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(final, sizeof(final), "%s.%s.%s.%lld.%09ld.%016llx.jch", kind, id, host, (long long)now.tv_sec, now.tv_nsec, r);
	snprintf(tmp, sizeof(tmp), ".tmp.%s.%016llx", host, r);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	created = 1;
	while (off < msg->len) {
		ssize_t w = write(fd, msg->data + off, msg->len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (renameat(dfd, tmp, dfd, final) < 0 || fsync(dfd) < 0)
		goto fail;
	close(dfd);
	return 0;
fail:
	*why = strerror(errno);
	if (fd >= 0)
		close(fd);
	if (created)
		unlinkat(dfd, tmp, 0);
	close(dfd);
	return -1;
}

int main(int argc, char **argv)
{
	static const char *kinds[] = { "jobcomp", "prolog", "epilog", "unknown" };
	enum context ctx = detect_context();
	const char *kind = kinds[ctx];
	int always_zero = ctx == CTX_PROLOG || ctx == CTX_EPILOG;
	struct buffer msg = { 0 };
	struct config cfg;
	char text[MAX_ANSWER];
	const char *why = "";
	char status;
	int deliver_errno;

	(void)argc;
	openlog("jobcompd-hook", LOG_PID, LOG_DAEMON);
	if (ctx == CTX_UNKNOWN) {
		fprintf(stderr,
			"jobcompd-hook: not run by Slurm (no JOBID, no SLURM_SCRIPT_CONTEXT); install it as\n"
			"JobCompLoc (JobCompType=jobcomp/script), PrologSlurmctld or EpilogSlurmctld\n");
		return 64;
	}
	load_config(argv[0] ? argv[0] : "jobcompd-hook", &cfg);
	arm_deadline(cfg.deadline_s, always_zero ? 0 : 1);
	if (build_message(&msg)) {
		logmsg(LOG_ERR, "JobId=%s %s: out of memory; record not forwarded", job_id(), kind);
		return always_zero ? 0 : 1;
	}
	status = deliver(&cfg, &msg, text, sizeof(text));
	deliver_errno = errno;
	if (status == 'A' || status == 'Q' || status == 'D' || status == 'I') {
		if (status == 'Q')
			logmsg(LOG_WARNING, "JobId=%s %s: jobcompd kept the record in quarantine: %s", job_id(), kind, text);
		return 0;
	}
	work_in_child(always_zero ? 0 : 1);
	if (status)
		logmsg(LOG_WARNING, "JobId=%s %s: jobcompd did not commit the record (%s); spooling it", job_id(), kind, text);
	else
		logmsg(LOG_WARNING, "JobId=%s %s: cannot reach jobcompd at %s (%s); spooling the record", job_id(), kind,
		       cfg.socket, strerror(deliver_errno));
	if (spool(&cfg, &msg, kind, &why) == 0)
		return 0;
	logmsg(LOG_ERR, "JobId=%s %s: cannot spool the record in %s: %s; the record is lost", job_id(), kind, cfg.spool, why);
	return always_zero ? 0 : 1;
}
