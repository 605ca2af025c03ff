/*
 * jobcompd-hook-socket: the hook socket's listener, in C, on Node's own event loop (libuv;
 * no thread of its own). src/sources/socket-source.ts drives it. For each connection of the native hook it checks
 * the peer's uid (SO_PEERCRED) against the allow list, reads the one message the hook sends
 * ("JCH1" | uint32 BE length | environment: src/sources/hook-protocol.ts) and hands its bytes
 * to JavaScript in one call; JavaScript answers in one call. What the bytes are (a message,
 * malformed, too large, truncated) is decided in JavaScript, by the one framer
 * (src/sources/hook-framer.ts); this only knows where a message ends.
 *
 * Why not node:net: a net.Socket per record (a stream with its state objects, listeners,
 * a shutdown request, then garbage) cost about a fifth of the hook path's CPU
 * (docs/benchmarks.md, "This round (2026-12-06, ninth session)").
 *
 * listen(path, { maxMessageBytes, timeoutMs, maxConnections, allowedUids }, onInput, onRefused)
 *   onInput(id, bytes, ended): the message's bytes, or what came before the stream ended
 *     (ended), or the first bytes of one that cannot be a message (a bad magic, too large)
 *   onRefused(id, uid, gid, pid, error): a peer not in allowedUids (uid -1 and an error
 *     message when its credentials could not be read)
 * answer(listener, id, bytes, drain): write the answer; then close (drain false, unless the
 *   client sent more after its message), or end the stream and read and drop until the
 *   client closes or the deadline (drain true).
 *   Every onInput and onRefused is answered exactly once; false when the connection is gone.
 * answerAfterWrite(listener, id, entry, offset, bytes): write `entry` at `offset` of the
 *   journal file, then answer as answer() does (closing the connection), once the entry is
 *   on disk. The entries queued by the end of a turn of the loop (its check phase) go to
 *   libuv's thread pool together, written in order and made durable by one fdatasync before
 *   any of them is answered (src/sources/hook-journal.ts); those queued meanwhile make up
 *   the next batch. Off the event loop, as the state file's fdatasync: a stalling disk must
 *   not freeze the daemon's timers. A failed write or sync answers none of the batch (their
 *   hooks spool) and calls onJournalError(message); every later entry fails the same way.
 * useJournal(listener, fd, sync, onJournalError): the journal file's descriptor (JavaScript
 *   owns it); sync false only under the test-only switch of src/outbox/sync.ts.
 * arriving(listener): connections accepted whose bytes are not handed over yet.
 * close(listener, done): stop accepting; connections that sent nothing are closed, the
 *   others are answered first; done() once none is left.
 *
 * Deadlines: a connection must deliver its whole message within timeoutMs, and a drained one
 * close within timeoutMs of its answer; one timer sweeps every timeoutMs / 4, so a deadline
 * is enforced between timeoutMs and 1.25 x timeoutMs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>


#define HEADER_BYTES 8
#define FIRST_CAPACITY 4096
#define DRAIN_BYTES 65536
#define MAX_SLOTS (1u << 20)

enum conn_state {
	READING,  /* the message is being read */
	WAITING,  /* handed to JavaScript, waiting for its answer */
	WRITING,  /* the answer is being written */
	DRAINING, /* answered; reading and dropping until the client closes */
	CLOSING,
};

struct listener;

struct conn {
	uv_pipe_t pipe;
	uv_write_t write_req;
	uv_shutdown_t shutdown_req;
	struct listener *l;
	uint32_t slot;
	int64_t id;
	enum conn_state state;
	int drain_after_answer;
	char *buf;
	size_t len, cap;
	/* HEADER_BYTES + the announced length, once the header is read; 0 before */
	size_t expected;
	/* uv_now() milliseconds; 0: none */
	uint64_t deadline;
	char *answer;
};

struct listener {
	napi_env env;
	uv_loop_t *loop;
	uv_pipe_t server;
	uv_timer_t sweep;
	napi_ref on_input, on_refused, on_closed;
	napi_async_context ctx;
	size_t max_message;
	uint64_t timeout_ms;
	uint32_t *allowed;
	uint32_t n_allowed;
	struct conn **slots;
	uint32_t n_slots;
	uint32_t *free_slots;
	uint32_t n_free;
	/* times each slot was used: ids are uses * n_slots + slot, never reused */
	int64_t *uses;
	uint32_t live;
	uint32_t arriving;
	int closing, server_closed, sweep_closing, finished;
	/* the journal: entries to write in this turn's check phase, then answer */
	uv_check_t flush;
	int journal_fd, journal_sync, journal_failed;
	napi_ref on_journal_error;
	struct journal_write *queue;
	uint32_t queued, queue_cap;
	/* the batch in the thread pool; NULL: none */
	struct journal_batch *writing;
};

struct journal_write {
	int64_t id;
	int64_t offset;
	char *entry;
	size_t entry_len;
	char *answer;
	size_t answer_len;
};

struct journal_batch {
	uv_work_t work;
	struct listener *l;
	struct journal_write *writes;
	uint32_t n;
	/* read by the pool's thread: copied, the listener's own may change meanwhile */
	int fd, sync;
	/* set by the pool's thread */
	int err;
	const char *what;
};

static char drain_buf[DRAIN_BYTES];

static void close_conn(struct conn *c);

/* Calls a JavaScript callback from a libuv callback; a throw becomes an uncaught exception. */
static void call_js(struct listener *l, napi_ref fn_ref, size_t argc, napi_value *argv)
{
	napi_value fn, recv, result, err;
	napi_status status;

	/* napi_make_callback wants an object as `this` */
	if (napi_get_reference_value(l->env, fn_ref, &fn) != napi_ok || napi_get_global(l->env, &recv) != napi_ok)
		napi_fatal_error("jobcompd hook listener", NAPI_AUTO_LENGTH, "cannot reach the JavaScript callback", NAPI_AUTO_LENGTH);
	status = napi_make_callback(l->env, l->ctx, recv, fn, argc, argv, &result);
	if (status == napi_pending_exception && napi_get_and_clear_last_exception(l->env, &err) == napi_ok)
		napi_fatal_exception(l->env, err);
	else if (status != napi_ok)
		/* a connection whose bytes JavaScript never saw would wait for ever: stop loudly */
		napi_fatal_error("jobcompd hook listener", NAPI_AUTO_LENGTH, "cannot call JavaScript", NAPI_AUTO_LENGTH);
}

static void free_tables(struct listener *l)
{
	free(l->allowed);
	free(l->slots);
	free(l->free_slots);
	free(l->uses);
	free(l->queue);
	l->queue = NULL;
	l->allowed = NULL;
	l->slots = NULL;
	l->free_slots = NULL;
	l->uses = NULL;
	l->n_slots = 0; /* answer() then finds no connection */
}

static void on_sweep_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	napi_handle_scope scope;

	l->finished = 1;
	free_tables(l);
	if (napi_open_handle_scope(l->env, &scope) == napi_ok) {
		call_js(l, l->on_closed, 0, NULL);
		napi_close_handle_scope(l->env, scope);
	}
	napi_delete_reference(l->env, l->on_input);
	napi_delete_reference(l->env, l->on_refused);
	napi_delete_reference(l->env, l->on_closed);
	if (l->on_journal_error != NULL)
		napi_delete_reference(l->env, l->on_journal_error);
	napi_async_destroy(l->env, l->ctx);
	/* the struct itself is freed with the JavaScript value that holds it (finalize) */
}

static void on_flush_closed(uv_handle_t *h)
{
	struct listener *l = h->data;

	uv_close((uv_handle_t *)&l->sweep, on_sweep_closed);
}

static void maybe_finish(struct listener *l)
{
	if (!l->closing || !l->server_closed || l->live > 0 || l->queued > 0 || l->writing != NULL || l->sweep_closing)
		return;
	l->sweep_closing = 1;
	uv_close((uv_handle_t *)&l->flush, on_flush_closed);
}

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct listener *l = c->l;

	l->slots[c->slot] = NULL;
	l->free_slots[l->n_free++] = c->slot;
	l->live--;
	free(c->buf);
	free(c->answer);
	free(c);
	maybe_finish(l);
}

static void close_conn(struct conn *c)
{
	if (c->state == CLOSING)
		return;
	if (c->state == READING)
		c->l->arriving--;
	c->state = CLOSING;
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void hand_over(struct conn *c, int ended)
{
	struct listener *l = c->l;
	napi_handle_scope scope;
	napi_value argv[3];
	void *data;

	uv_read_stop((uv_stream_t *)&c->pipe);
	c->state = WAITING;
	c->deadline = 0;
	l->arriving--;
	if (napi_open_handle_scope(l->env, &scope) != napi_ok) {
		close_conn(c);
		return;
	}
	if (napi_create_int64(l->env, c->id, &argv[0]) == napi_ok &&
	    napi_create_buffer_copy(l->env, c->len, c->buf, &data, &argv[1]) == napi_ok &&
	    napi_get_boolean(l->env, ended, &argv[2]) == napi_ok) {
		free(c->buf);
		c->buf = NULL;
		c->len = c->cap = 0;
		call_js(l, l->on_input, 3, argv);
	} else {
		close_conn(c); /* no answer will come: the hook spools the record */
	}
	napi_close_handle_scope(l->env, scope);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
	struct conn *c = h->data;
	size_t want;
	char *grown;

	(void)suggested;
	if (c->state != READING) {
		*out = uv_buf_init(drain_buf, sizeof(drain_buf));
		return;
	}
	/*
	 * Grown as bytes arrive, not to the length the header claims (a client claiming
	 * MaxMessageBytes and sending nothing more holds 4 KiB), up to the whole message and
	 * one byte more: bytes after it make it malformed.
	 */
	if (c->cap == c->len) {
		want = c->cap == 0 ? FIRST_CAPACITY : c->cap * 2;
		if (c->expected > 0 && want > c->expected + 1)
			want = c->expected + 1;
		grown = realloc(c->buf, want);
		if (grown == NULL) {
			*out = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS: the connection is closed */
			return;
		}
		c->buf = grown;
		c->cap = want;
	}
	*out = uv_buf_init(c->buf + c->len, (unsigned int)(c->cap - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = s->data;
	uint32_t length;

	(void)b;
	if (c->state == DRAINING) {
		if (nread < 0)
			close_conn(c);
		return;
	}
	if (c->state != READING)
		return;
	if (nread == UV_EOF && c->len > 0) {
		hand_over(c, 1);
		return;
	}
	if (nread < 0) {
		/* nothing sent, or the client went away mid-message: it spools the record itself */
		close_conn(c);
		return;
	}
	c->len += (size_t)nread;
	if (c->expected == 0 && c->len >= HEADER_BYTES) {
		memcpy(&length, c->buf + 4, 4);
		length = ntohl(length);
		if (memcmp(c->buf, "JCH1", 4) != 0 || (size_t)length > c->l->max_message) {
			hand_over(c, 0); /* the framer says what is wrong with it */
			return;
		}
		c->expected = HEADER_BYTES + length;
	}
	if (c->expected > 0 && c->len >= c->expected)
		hand_over(c, 0);
}

static void sweep_cb(uv_timer_t *t)
{
	struct listener *l = t->data;
	uint64_t now = uv_now(l->loop);
	uint32_t i;

	for (i = 0; i < l->n_slots; i++) {
		struct conn *c = l->slots[i];

		if (c != NULL && c->deadline != 0 && now >= c->deadline)
			close_conn(c);
	}
}

static void refuse(struct conn *c, int64_t uid, int64_t gid, int64_t pid, const char *error)
{
	struct listener *l = c->l;
	napi_handle_scope scope;
	napi_value argv[5];

	c->state = WAITING;
	if (napi_open_handle_scope(l->env, &scope) != napi_ok) {
		close_conn(c);
		return;
	}
	if (napi_create_int64(l->env, c->id, &argv[0]) == napi_ok && napi_create_int64(l->env, uid, &argv[1]) == napi_ok &&
	    napi_create_int64(l->env, gid, &argv[2]) == napi_ok && napi_create_int64(l->env, pid, &argv[3]) == napi_ok &&
	    (error == NULL ? napi_get_undefined(l->env, &argv[4]) : napi_create_string_utf8(l->env, error, NAPI_AUTO_LENGTH, &argv[4])) == napi_ok)
		call_js(l, l->on_refused, 5, argv);
	else
		close_conn(c);
	napi_close_handle_scope(l->env, scope);
}

static void on_unwanted_closed(uv_handle_t *h)
{
	free(h->data);
}

static void connection_cb(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	struct conn *c;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;
	uint32_t i, slot;
	char error[160];

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	uv_pipe_init(l->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 || l->closing || l->n_free == 0) {
		/* beyond MaxConnections, as node:net does: closed at once, and the hook spools */
		uv_close((uv_handle_t *)&c->pipe, on_unwanted_closed);
		return;
	}
	slot = l->free_slots[--l->n_free];
	c->l = l;
	c->slot = slot;
	c->id = l->uses[slot]++ * (int64_t)l->n_slots + slot;
	l->slots[slot] = c;
	l->live++;
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		snprintf(error, sizeof(error), "getsockopt(SO_PEERCRED): %s", strerror(errno));
		refuse(c, -1, -1, -1, error);
		return;
	}
	for (i = 0; i < l->n_allowed; i++)
		if (l->allowed[i] == cred.uid)
			break;
	if (i == l->n_allowed) {
		refuse(c, cred.uid, cred.gid, cred.pid, NULL);
		return;
	}
	c->state = READING;
	c->deadline = uv_now(l->loop) + l->timeout_ms;
	l->arriving++;
	if (uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) != 0)
		close_conn(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	(void)req;
	(void)status; /* a client gone already is closed by its read error */
}

/*
 * Bytes the client sent after its whole message, while it was being answered: closing now
 * would reset the client's end before it reads the answer, so the connection is drained
 * instead. (Bytes in the same read as the message made it malformed already.)
 */
static int unread_bytes(struct conn *c)
{
	uv_os_fd_t fd;
	int n = 0;

	return uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

static void write_cb(uv_write_t *req, int status)
{
	struct conn *c = req->data;

	free(c->answer);
	c->answer = NULL;
	if (c->state != WRITING)
		return;
	if (status < 0 || (!c->drain_after_answer && !unread_bytes(c))) {
		close_conn(c);
		return;
	}
	/* the client reads the answer and then the end of the stream, as after node:net's end() */
	c->state = DRAINING;
	c->deadline = uv_now(c->l->loop) + c->l->timeout_ms;
	if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->pipe, shutdown_cb) != 0 ||
	    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) != 0)
		close_conn(c);
}

/* Writes an answer, then closes or drains (js_answer); 0, or -1 when the connection is gone, -2 when answered already. */
static int send_answer(struct listener *l, int64_t id, const char *data, size_t len, int drain)
{
	struct conn *c;
	uv_buf_t buf;
	int written;

	c = id >= 0 && l->n_slots > 0 ? l->slots[id % l->n_slots] : NULL;
	if (c == NULL || c->id != id || c->state == CLOSING)
		return -1;
	if (c->state != WAITING)
		return -2;
	c->drain_after_answer = drain;
	c->state = WRITING;
	buf = uv_buf_init((char *)data, (unsigned int)len);
	/* the answer almost always fits the socket's buffer: written here, no request to wait for */
	written = uv_try_write((uv_stream_t *)&c->pipe, &buf, 1);
	c->write_req.data = c;
	if (written == (int)len) {
		write_cb(&c->write_req, 0);
	} else if (written < 0 && written != UV_EAGAIN) {
		close_conn(c);
	} else {
		if (written < 0)
			written = 0;
		c->answer = malloc(len - (size_t)written);
		if (c->answer == NULL) {
			close_conn(c);
		} else {
			memcpy(c->answer, data + written, len - (size_t)written);
			buf = uv_buf_init(c->answer, (unsigned int)(len - (size_t)written));
			if (uv_write(&c->write_req, (uv_stream_t *)&c->pipe, &buf, 1, write_cb) != 0)
				close_conn(c);
		}
	}
	return 0;
}

/* A connection whose entry could not be made durable: closed unanswered, so its hook spools the record. */
static void drop_unanswered(struct listener *l, int64_t id)
{
	struct conn *c = id >= 0 && l->n_slots > 0 ? l->slots[id % l->n_slots] : NULL;

	if (c != NULL && c->id == id)
		close_conn(c);
}

static int write_all(int fd, const char *p, size_t len, int64_t offset)
{
	ssize_t n;

	while (len > 0) {
		n = pwrite(fd, p, len, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		p += n;
		len -= (size_t)n;
		offset += n;
	}
	return 0;
}

static void journal_failed(struct listener *l, int err, const char *what)
{
	napi_handle_scope scope;
	napi_value argv[1];
	char msg[256];

	if (l->journal_failed)
		return;
	l->journal_failed = 1;
	snprintf(msg, sizeof(msg), "%s of the hook journal failed: %s", what, strerror(err));
	if (napi_open_handle_scope(l->env, &scope) != napi_ok)
		return;
	if (napi_create_string_utf8(l->env, msg, NAPI_AUTO_LENGTH, &argv[0]) == napi_ok)
		call_js(l, l->on_journal_error, 1, argv);
	napi_close_handle_scope(l->env, scope);
}

/* In the thread pool: the batch's entries written in order, then one fdatasync. */
static void write_batch(uv_work_t *req)
{
	struct journal_batch *b = req->data;
	uint32_t i;

	for (i = 0; i < b->n && b->err == 0; i++)
		b->err = write_all(b->fd, b->writes[i].entry, b->writes[i].entry_len, b->writes[i].offset);
	if (b->err != 0) {
		b->what = "a write";
	} else if (b->sync && fdatasync(b->fd) != 0) {
		b->err = errno;
		b->what = "the fdatasync";
	}
}

static void start_batch(struct listener *l);

/* Back on the loop: the batch's answers, or none of them if it failed. */
static void batch_written(uv_work_t *req, int status)
{
	struct journal_batch *b = req->data;
	struct listener *l = b->l;
	uint32_t i;

	l->writing = NULL;
	if (status != 0 && b->err == 0) {
		b->err = -status;
		b->what = "the thread pool's run";
	}
	if (b->err != 0)
		journal_failed(l, b->err, b->what);
	for (i = 0; i < b->n; i++) {
		if (l->journal_failed)
			drop_unanswered(l, b->writes[i].id);
		else
			send_answer(l, b->writes[i].id, b->writes[i].answer, b->writes[i].answer_len, 0);
		free(b->writes[i].entry);
		free(b->writes[i].answer);
	}
	free(b->writes);
	free(b);
	start_batch(l);
	maybe_finish(l);
}

/* The entries queued so far go to the thread pool, unless a batch is there already. */
static void start_batch(struct listener *l)
{
	struct journal_batch *b;
	int r;

	if (l->writing != NULL || l->queued == 0)
		return;
	b = calloc(1, sizeof(*b));
	if (b == NULL) {
		uint32_t i;

		journal_failed(l, ENOMEM, "a batch");
		for (i = 0; i < l->queued; i++) {
			drop_unanswered(l, l->queue[i].id);
			free(l->queue[i].entry);
			free(l->queue[i].answer);
		}
		l->queued = 0;
		return;
	}
	b->l = l;
	b->writes = l->queue;
	b->n = l->queued;
	b->fd = l->journal_fd;
	b->sync = l->journal_sync;
	b->work.data = b;
	l->queue = NULL;
	l->queued = l->queue_cap = 0;
	l->writing = b;
	if (l->journal_failed) {
		batch_written(&b->work, 0); /* nothing more is written after a failure: all dropped */
		return;
	}
	r = uv_queue_work(l->loop, &b->work, write_batch, batch_written);
	if (r != 0)
		batch_written(&b->work, r);
}

/* The check phase: what this turn queued goes to the pool (hook-journal.ts: one fdatasync for the turn's entries). */
static void flush_cb(uv_check_t *h)
{
	uv_check_stop(h);
	start_batch(h->data);
}

/* ---- the JavaScript functions ---- */

static napi_value throw_uv(napi_env env, const char *what, int err)
{
	char msg[4096 + 128];

	snprintf(msg, sizeof(msg), "%s: %s", what, uv_strerror(err));
	napi_throw_error(env, uv_err_name(err), msg);
	return NULL;
}

/* A positive integer property; the limits of the configuration (safe integers) fit an int64. */
static int get_positive_property(napi_env env, napi_value obj, const char *key, int64_t *out)
{
	napi_value v;

	return napi_get_named_property(env, obj, key, &v) == napi_ok && napi_get_value_int64(env, v, out) == napi_ok && *out > 0 ? 0 : -1;
}

static struct listener *listener_of(napi_env env, napi_value v)
{
	void *p = NULL;

	if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL)
		napi_throw_type_error(env, NULL, "not a hook listener");
	return p;
}

static void free_listener(struct listener *l)
{
	free_tables(l);
	free(l);
}

/* A listener never closed keeps its handles on the loop: then its memory stays too. */
static void finalize_listener(napi_env env, void *data, void *hint)
{
	struct listener *l = data;

	(void)env;
	(void)hint;
	if (l->finished)
		free(l);
}

static napi_value js_listen(napi_env env, napi_callback_info info)
{
	size_t argc = 4, path_len;
	napi_value argv[4], uids, v, name, result;
	char path[4096];
	int64_t max_message, timeout_ms, connections;
	uint32_t max_connections, i;
	struct listener *l;
	int r;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
	    napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &path_len) != napi_ok ||
	    get_positive_property(env, argv[1], "maxMessageBytes", &max_message) < 0 ||
	    get_positive_property(env, argv[1], "timeoutMs", &timeout_ms) < 0 ||
	    get_positive_property(env, argv[1], "maxConnections", &connections) < 0 ||
	    napi_get_named_property(env, argv[1], "allowedUids", &uids) != napi_ok) {
		napi_throw_type_error(env, NULL, "listen(path, { maxMessageBytes, timeoutMs, maxConnections, allowedUids }, onInput, onRefused)");
		return NULL;
	}
	/* no process has more descriptors open than this: a larger MaxConnections changes nothing */
	max_connections = connections > MAX_SLOTS ? MAX_SLOTS : (uint32_t)connections;
	l = calloc(1, sizeof(*l));
	if (l == NULL || napi_get_array_length(env, uids, &l->n_allowed) != napi_ok) {
		free(l);
		napi_throw_type_error(env, NULL, "allowedUids must be an array of uids");
		return NULL;
	}
	l->env = env;
	l->max_message = (size_t)max_message;
	l->timeout_ms = (uint64_t)timeout_ms;
	l->n_slots = max_connections;
	l->allowed = calloc(l->n_allowed + 1, sizeof(*l->allowed));
	l->slots = calloc(max_connections, sizeof(*l->slots));
	l->free_slots = calloc(max_connections, sizeof(*l->free_slots));
	l->uses = calloc(max_connections, sizeof(*l->uses));
	if (l->allowed == NULL || l->slots == NULL || l->free_slots == NULL || l->uses == NULL) {
		free_listener(l);
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	for (i = 0; i < l->n_allowed; i++) {
		if (napi_get_element(env, uids, i, &v) != napi_ok || napi_get_value_uint32(env, v, &l->allowed[i]) != napi_ok) {
			free_listener(l);
			napi_throw_type_error(env, NULL, "allowedUids must be an array of uids");
			return NULL;
		}
	}
	for (i = 0; i < max_connections; i++)
		l->free_slots[i] = max_connections - 1 - i;
	l->n_free = max_connections;
	if (napi_get_uv_event_loop(env, &l->loop) != napi_ok) {
		free_listener(l);
		napi_throw_error(env, NULL, "no event loop");
		return NULL;
	}
	uv_pipe_init(l->loop, &l->server, 0);
	l->server.data = l;
	r = uv_pipe_bind(&l->server, path);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&l->server, 511, connection_cb);
	if (r != 0) {
		/* the handle is freed once libuv has closed it */
		uv_close((uv_handle_t *)&l->server, NULL);
		l->server.data = NULL;
		throw_uv(env, path, r);
		return NULL; /* l leaks with its closed handle: a failed listen is fatal to the daemon */
	}
	uv_timer_init(l->loop, &l->sweep);
	l->sweep.data = l;
	uv_check_init(l->loop, &l->flush);
	l->flush.data = l;
	l->journal_fd = -1;
	uv_timer_start(&l->sweep, sweep_cb, l->timeout_ms / 4 > 10 ? l->timeout_ms / 4 : 10, l->timeout_ms / 4 > 10 ? l->timeout_ms / 4 : 10);
	uv_unref((uv_handle_t *)&l->sweep);
	if (napi_create_reference(env, argv[2], 1, &l->on_input) != napi_ok ||
	    napi_create_reference(env, argv[3], 1, &l->on_refused) != napi_ok ||
	    napi_create_string_utf8(env, "jobcompd-hook-listener", NAPI_AUTO_LENGTH, &name) != napi_ok ||
	    napi_async_init(env, NULL, name, &l->ctx) != napi_ok || napi_create_external(env, l, finalize_listener, NULL, &result) != napi_ok)
		return NULL;
	return result;
}

static napi_value js_answer(napi_env env, napi_callback_info info)
{
	size_t argc = 4, len;
	napi_value argv[4], result;
	struct listener *l;
	int64_t id;
	void *data;
	bool drain;
	int r;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || (l = listener_of(env, argv[0])) == NULL ||
	    napi_get_value_int64(env, argv[1], &id) != napi_ok || napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok ||
	    napi_get_value_bool(env, argv[3], &drain) != napi_ok) {
		napi_throw_type_error(env, NULL, "answer(listener, id, bytes, drain)");
		return NULL;
	}
	r = send_answer(l, id, data, len, drain);
	if (r == -2) {
		napi_throw_error(env, NULL, "a hook connection answered twice");
		return NULL;
	}
	napi_get_boolean(env, r == 0, &result);
	return result;
}

static char *copy_bytes(const void *data, size_t len)
{
	char *p = malloc(len > 0 ? len : 1);

	if (p != NULL)
		memcpy(p, data, len);
	return p;
}

static napi_value js_answer_after_write(napi_env env, napi_callback_info info)
{
	size_t argc = 5, entry_len, answer_len;
	napi_value argv[5];
	struct listener *l;
	struct journal_write *w;
	int64_t id, offset;
	void *entry, *answer;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 || (l = listener_of(env, argv[0])) == NULL ||
	    napi_get_value_int64(env, argv[1], &id) != napi_ok || napi_get_buffer_info(env, argv[2], &entry, &entry_len) != napi_ok ||
	    napi_get_value_int64(env, argv[3], &offset) != napi_ok || offset < 0 ||
	    napi_get_buffer_info(env, argv[4], &answer, &answer_len) != napi_ok) {
		napi_throw_type_error(env, NULL, "answerAfterWrite(listener, id, entry, offset, bytes)");
		return NULL;
	}
	if (l->journal_fd < 0) {
		napi_throw_error(env, NULL, "the hook listener has no journal (useJournal)");
		return NULL;
	}
	if (l->queued == l->queue_cap) {
		uint32_t cap = l->queue_cap == 0 ? 64 : l->queue_cap * 2;
		struct journal_write *grown = realloc(l->queue, cap * sizeof(*grown));

		if (grown == NULL) {
			napi_throw_error(env, NULL, "out of memory");
			return NULL;
		}
		l->queue = grown;
		l->queue_cap = cap;
	}
	w = &l->queue[l->queued];
	w->id = id;
	w->offset = offset;
	w->entry_len = entry_len;
	w->answer_len = answer_len;
	w->entry = copy_bytes(entry, entry_len);
	w->answer = copy_bytes(answer, answer_len);
	if (w->entry == NULL || w->answer == NULL) {
		free(w->entry);
		free(w->answer);
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	l->queued++;
	uv_check_start(&l->flush, flush_cb);
	return NULL;
}

static napi_value js_use_journal(napi_env env, napi_callback_info info)
{
	size_t argc = 4;
	napi_value argv[4];
	struct listener *l;
	int32_t fd;
	bool sync;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || (l = listener_of(env, argv[0])) == NULL ||
	    napi_get_value_int32(env, argv[1], &fd) != napi_ok || fd < 0 || napi_get_value_bool(env, argv[2], &sync) != napi_ok) {
		napi_throw_type_error(env, NULL, "useJournal(listener, fd, sync, onJournalError)");
		return NULL;
	}
	if (l->journal_fd >= 0) {
		napi_throw_error(env, NULL, "the hook listener has a journal already");
		return NULL;
	}
	if (napi_create_reference(env, argv[3], 1, &l->on_journal_error) != napi_ok)
		return NULL;
	l->journal_fd = fd;
	l->journal_sync = sync;
	return NULL;
}

static napi_value js_arriving(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1], result;
	struct listener *l;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || (l = listener_of(env, argv[0])) == NULL)
		return NULL;
	napi_create_uint32(env, l->arriving, &result);
	return result;
}

static void on_server_closed(uv_handle_t *h)
{
	struct listener *l = h->data;

	l->server_closed = 1;
	maybe_finish(l);
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	struct listener *l;
	uint32_t i;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || (l = listener_of(env, argv[0])) == NULL)
		return NULL;
	if (l->closing) {
		napi_throw_error(env, NULL, "the hook listener is closed already");
		return NULL;
	}
	if (napi_create_reference(env, argv[1], 1, &l->on_closed) != napi_ok)
		return NULL;
	l->closing = 1;
	uv_close((uv_handle_t *)&l->server, on_server_closed);
	for (i = 0; i < l->n_slots; i++)
		if (l->slots[i] != NULL && l->slots[i]->state == READING && l->slots[i]->len == 0)
			close_conn(l->slots[i]);
	return NULL;
}

static napi_value init(napi_env env, napi_value exports)
{
	static const struct {
		const char *name;
		napi_callback fn;
	} fns[] = {
		{ "listen", js_listen },
		{ "answer", js_answer },
		{ "answerAfterWrite", js_answer_after_write },
		{ "useJournal", js_use_journal },
		{ "arriving", js_arriving },
		{ "close", js_close },
	};
	napi_value fn;
	size_t i;

	for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn) != napi_ok ||
		    napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok)
			return NULL;
	}
	return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
