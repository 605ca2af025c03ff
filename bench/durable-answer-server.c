/*
 * The machine's floor under any durable receiver of the native hook's records: a C server
 * that takes one hook message per connection (hook-protocol.ts: "JCH1", a big-endian
 * length, the environment), writes it over earlier data in a file of its own, fdatasyncs
 * that file, and only then answers "A". Nothing is parsed or kept beyond that, and it runs
 * one connection at a time, as the hook's sequential runs need. With --no-sync it answers
 * at once after reading (the cost of the socket alone). For hook-latency.ts, which
 * compiles it with cc at run time, as it does launcher.c (docs/benchmarks.md).
 *
 *   durable-answer-server <socket path> <data file> [--no-sync]
 *
 * Prints "listening <socket path>" once it accepts connections.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HEADER_BYTES 8
#define MAX_MESSAGE_BYTES (1 << 20)
/* messages are written one after the other over this much of the file, then from its start again */
#define FILE_BYTES (4 << 20)

static char message[HEADER_BYTES + MAX_MESSAGE_BYTES];

static int read_all(int fd, char *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

int main(int argc, char **argv)
{
	static const char answer[] = { 'A', 0, 0, 0, 6, 's', 't', 'o', 'r', 'e', 'd' };
	static char zeros[64 * 1024];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int sync_data, data, listener;
	off_t at = 0;
	size_t i;

	if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--no-sync") != 0) ||
	    strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: durable-answer-server <socket path> <data file> [--no-sync]\n");
		return 64;
	}
	sync_data = argc == 3;
	/* written once and synced, so that every later write lands over allocated blocks */
	data = open(argv[2], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (data < 0)
		die(argv[2]);
	for (i = 0; i < FILE_BYTES / sizeof(zeros); i++)
		if (write(data, zeros, sizeof(zeros)) != (ssize_t)sizeof(zeros))
			die("write");
	if (fsync(data) != 0)
		die("fsync");

	strcpy(addr.sun_path, argv[1]);
	unlink(argv[1]);
	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(listener, 128) != 0)
		die(argv[1]);
	printf("listening %s\n", argv[1]);
	fflush(stdout);

	for (;;) {
		int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		uint32_t length;

		if (conn < 0)
			continue;
		if (read_all(conn, message, HEADER_BYTES) == 0 && memcmp(message, "JCH1", 4) == 0) {
			length = (uint32_t)(unsigned char)message[4] << 24 | (uint32_t)(unsigned char)message[5] << 16 |
				 (uint32_t)(unsigned char)message[6] << 8 | (uint32_t)(unsigned char)message[7];
			if (length <= MAX_MESSAGE_BYTES && read_all(conn, message + HEADER_BYTES, length) == 0) {
				size_t n = HEADER_BYTES + length;

				if (at + (off_t)n > FILE_BYTES)
					at = 0;
				if (pwrite(data, message, n, at) != (ssize_t)n)
					die("pwrite");
				at += (off_t)n;
				if (sync_data && fdatasync(data) != 0)
					die("fdatasync");
				if (write(conn, answer, sizeof(answer)) != (ssize_t)sizeof(answer))
					perror("write");
			}
		}
		close(conn);
	}
}
