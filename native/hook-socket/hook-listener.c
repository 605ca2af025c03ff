/*
 * jobcompd-hook-socket: the hook socket's listener, in C, on Node's own event loop (libuv;
 * no thread of its own). src/sources/socket-source.ts drives it. For each connection of the
 * native hook it checks the peer's uid (SO_PEERCRED) against the allow list, reads the one
 * message the hook sends ("JCH1" | uint32 BE length | environment:
 * src/sources/hook-protocol.ts) and hands its bytes to JavaScript in one call; JavaScript
 * answers in one call. What the bytes are (a message, malformed, too large, truncated) is
 * decided in JavaScript, by the one framer (src/sources/hook-framer.ts); this only knows
 * where a message ends.
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
	napi_async_destroy(l->env, l->ctx);
	/* the struct itself is freed with the JavaScript value that holds it (finalize) */
}

static void maybe_finish(struct listener *l)
{
	if (!l->closing || !l->server_closed || l->live > 0 || l->sweep_closing)
		return;
	l->sweep_closing = 1;
	uv_close((uv_handle_t *)&l->sweep, on_sweep_closed);
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
	struct conn *c;
	int64_t id;
	void *data;
	bool drain;
	uv_buf_t buf;
	int written;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || (l = listener_of(env, argv[0])) == NULL ||
	    napi_get_value_int64(env, argv[1], &id) != napi_ok || napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok ||
	    napi_get_value_bool(env, argv[3], &drain) != napi_ok) {
		napi_throw_type_error(env, NULL, "answer(listener, id, bytes, drain)");
		return NULL;
	}
	c = id >= 0 && l->n_slots > 0 ? l->slots[id % l->n_slots] : NULL;
	if (c == NULL || c->id != id || c->state == CLOSING) {
		napi_get_boolean(env, false, &result);
		return result;
	}
	if (c->state != WAITING) {
		napi_throw_error(env, NULL, "a hook connection answered twice");
		return NULL;
	}
	c->drain_after_answer = drain;
	c->state = WRITING;
	buf = uv_buf_init(data, (unsigned int)len);
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
			memcpy(c->answer, (char *)data + written, len - (size_t)written);
			buf = uv_buf_init(c->answer, (unsigned int)(len - (size_t)written));
			if (uv_write(&c->write_req, (uv_stream_t *)&c->pipe, &buf, 1, write_cb) != 0)
				close_conn(c);
		}
	}
	napi_get_boolean(env, true, &result);
	return result;
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
