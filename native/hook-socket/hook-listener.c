/*
 * jobcompd-hook-socket: the hook socket's listener, in C, on a thread of its own with its own
 * libuv loop. src/sources/socket-source.ts drives it. For each connection of the native hook
 * it checks the peer's uid (SO_PEERCRED) against the allow list, reads the one message the
 * hook sends ("JCH1" | uint32 BE length | environment: src/sources/hook-protocol.ts) and
 * hands its bytes to JavaScript in one call; JavaScript answers in one call. What the bytes
 * are (a message, malformed, too large, truncated) is decided in JavaScript, by the one
 * framer (src/sources/hook-framer.ts); this only knows where a message ends.
 *
 * The hook journal (src/sources/hook-journal.ts, docs/delivery-guarantees.md#the-hook-journal):
 * a whole message that arrives while no other connection is open (slurmctld runs
 * jobcomp/script one record after another) is written to the journal file here, made durable
 * by one fdatasync for all such messages of a turn of this loop, and answered "A" before
 * JavaScript sees it; JavaScript then commits it to the state file, whose transaction records
 * the entry as applied (applied() frees its space). Without room in the journal, or with
 * other connections open, the message is handed over unanswered, as without a journal, and
 * joins the state file's group commit. A failed write or fdatasync answers none of the turn's
 * journal entries (their hooks spool them), stops the journal and calls onJournalError.
 * With journal.batch, answered entries are held here until JavaScript takes them (take()):
 * a lone hook then wakes no JavaScript; onHeld hears of the first held and every batch-th.
 *
 * Why a thread: slurmctld waits for each jobcomp/script, and a hook answered only once
 * JavaScript has run (and a SQLite transaction committed) cannot come near the cost of the
 * fdatasync itself (docs/benchmark-rounds.md, tenth and eleventh sessions). Why not node:net: a
 * net.Socket per record cost about a fifth of the hook path's CPU (ninth session).
 *
 * listen(path, { maxMessageBytes, timeoutMs, maxConnections, allowedUids, journal? },
 *        onInput, onRefused, onJournalError, onHeld?)
 *   journal: { fd, bytes, epoch, nextSeq, sync, batch? } (JavaScript owns fd, made by
 *     hook-journal.ts; sync false only under the test-only switch of src/outbox/sync.ts;
 *     batch: hold answered entries for take(), and call onHeld)
 *   onInput(id, bytes, ended, seq, end, answeredAt): the message's bytes, or what came before
 *     the stream ended (ended), or the first bytes of one that cannot be a message (a bad
 *     magic, too large). seq > 0: answered already, from journal entry seq ending at offset
 *     end, at answeredAt (ms since the epoch).
 *   onHeld(count): count entries are held; called for the first and every batch-th. Held
 *     entries go to onInput at take(), before any other event, and at close.
 *   onRefused(id, uid, gid, pid, error): a peer not in allowedUids (uid -1 and an error
 *     message when its credentials could not be read)
 *   onJournalError(message): a write or fdatasync of the journal failed
 * answer(listener, id, bytes, drain): write the answer; then close (drain false, unless the
 *   client sent more after its message), or end the stream and read and drop until the
 *   client closes or the deadline (drain true). Every onInput with seq 0 and every onRefused
 *   is answered exactly once; a connection gone meanwhile is left alone.
 * applied(listener, seq): the state file holds every journal entry up to seq, synced; the
 *   next placement sees it.
 * arriving(listener): connections accepted whose bytes are not handed over yet.
 * take(listener): the held entries, to onInput now, in order.
 * close(listener, done): stop accepting; connections that sent nothing are closed, the
 *   others are answered first; done() once none is left and the thread has ended.
 *
 * Threads: every connection, the journal's placement and its file are this thread's alone.
 * JavaScript's calls reach it as commands (a locked list and a uv_async_t); its callbacks
 * reach JavaScript as events (one threadsafe function, in order).
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
#include <time.h>
#include <unistd.h>
#include <uv.h>


#define HEADER_BYTES 8
#define FIRST_CAPACITY 4096
#define DRAIN_BYTES 65536
#define MAX_SLOTS (1u << 20)
/* the journal's format: src/sources/hook-journal-format.ts */
#define JOURNAL_HEADER_BYTES 4096
#define ENTRY_HEADER_BYTES 28

enum conn_state {
	READING,  /* the message is being read */
	WAITING,  /* handed to JavaScript (or to the journal), waiting for its answer */
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

/* what this thread tells JavaScript, in order */
enum event_kind { EV_INPUT, EV_REFUSED, EV_JOURNAL_ERROR, EV_HELD, EV_CLOSED };

struct event {
	enum event_kind kind;
	int64_t id;
	char *bytes; /* EV_INPUT: the message; EV_REFUSED, EV_JOURNAL_ERROR: a message or NULL */
	size_t len;
	int ended;
	int64_t seq, end; /* EV_HELD: seq is how many are held */
	double answered_at; /* EV_INPUT with seq > 0: when it was answered, ms since the epoch */
	int64_t uid, gid, pid;
	struct event *next;
};

/* what JavaScript tells this thread, in order */
enum command_kind { CMD_ANSWER, CMD_CLOSE };

struct command {
	enum command_kind kind;
	int64_t id;
	char *bytes;
	size_t len;
	int drain;
	struct command *next;
};

/* a journal entry placed and not yet applied by a synced state file transaction */
struct span {
	uint64_t seq, offset, end;
};

/* an entry to write at the end of this turn, and the connection to answer once it is synced */
struct journal_write {
	int64_t id;
	struct span at;
	char *entry;
	size_t entry_len;
	char *message; /* the connection's bytes, for JavaScript once the entry is synced */
	size_t message_len;
};

struct journal {
	int fd, sync, failed;
	/* > 0: answered entries are held for take(), and onHeld hears of the first and every batch-th */
	uint32_t batch;
	uint64_t size, epoch, next_seq, head;
	struct span *unapplied;
	uint32_t n_unapplied, cap_unapplied;
	struct journal_write *queue;
	uint32_t queued, queue_cap;
};

struct listener {
	/* owned by the JavaScript thread */
	napi_env env;
	napi_ref on_input, on_refused, on_journal_error, on_held, on_closed;
	napi_threadsafe_function tsfn;
	uv_thread_t thread;
	int thread_started, close_called, finished;
	/* answers of this turn of Node's loop, handed to the thread together when it ends (main_idle) */
	uv_loop_t *main_loop;
	uv_idle_t main_idle;
	int main_idle_closed;
	struct command *out_head, *out_tail;

	/* shared: commands, and the answered entries held for take(), under lock */
	uv_mutex_t lock;
	struct command *cmd_head, *cmd_tail;
	struct event *held_head, *held_tail;
	uint32_t n_held;
	int taking_commands;
	uint32_t arriving; /* __atomic */
	/* applied(): the state file holds the journal's entries up to it (__atomic; seen by the next placement) */
	uint64_t applied_seq;

	/* owned by the listener's thread */
	uv_loop_t loop;
	uv_pipe_t server;
	uv_timer_t sweep;
	uv_check_t flush;
	uv_async_t wake;
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
	int closing, handles_closing, handles_left;
	struct journal journal; /* fd -1: none */
	/* events of this turn of the thread's loop, handed to JavaScript together at its end (flush) */
	struct event *batch_head, *batch_tail;
};

static char drain_buf[DRAIN_BYTES];

static void close_conn(struct conn *c);
static void flush_cb(uv_check_t *h);

/* ---- CRC-32C (Castagnoli), as src/kafka-protocol/crc32c.ts ---- */

static uint32_t crc_table[256];

static void crc_init(void)
{
	uint32_t n, c;
	int k;

	for (n = 0; n < 256; n++) {
		c = n;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[n] = c;
	}
}

static uint32_t crc32c(const unsigned char *p, size_t len)
{
	uint32_t crc = 0xffffffffu;

	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc ^ 0xffffffffu;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void put_u64(unsigned char *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

/* ---- events: this thread to JavaScript ---- */

static void free_events(struct event *e)
{
	struct event *next;

	for (; e != NULL; e = next) {
		next = e->next;
		free(e->bytes);
		free(e);
	}
}

/* The entries held for take(), all of them, in order (either thread). */
static struct event *take_held(struct listener *l, struct event **tail)
{
	struct event *held;

	uv_mutex_lock(&l->lock);
	held = l->held_head;
	*tail = l->held_tail;
	l->held_head = l->held_tail = NULL;
	l->n_held = 0;
	uv_mutex_unlock(&l->lock);
	return held;
}

/*
 * The events so far go to JavaScript in one call: one wake of Node's loop for a turn's
 * messages, not one each (docs/benchmark-rounds.md, eleventh session).
 */
static void send_events(struct listener *l)
{
	struct event *batch = l->batch_head, *held, *held_tail;

	l->batch_head = l->batch_tail = NULL;
	/* the entries held for take() came first: they go first */
	held = take_held(l, &held_tail);
	if (held != NULL) {
		held_tail->next = batch;
		batch = held;
	}
	if (batch == NULL)
		return;
	/* the queue has no limit: the call fails only once the function is released (never while the thread runs) */
	if (napi_call_threadsafe_function(l->tsfn, batch, napi_tsfn_nonblocking) != napi_ok)
		free_events(batch);
}

/* An event for JavaScript, sent with the others of this turn at its end (flush_cb). */
static void post(struct listener *l, struct event *e)
{
	if (l->batch_tail != NULL)
		l->batch_tail->next = e;
	else
		l->batch_head = e;
	l->batch_tail = e;
	if (l->handles_closing)
		send_events(l);
	else
		uv_check_start(&l->flush, flush_cb);
}

/*
 * An entry synced in the journal, held until JavaScript takes it (take(), as the Ingest
 * gathers its batch: src/ingest.ts, JOURNALED_WAIT_MS), so that a lone hook wakes no
 * JavaScript: JavaScript hears only of the first held and of every batch-th
 * (docs/benchmark-rounds.md, eighteenth session). Returns how many are held when it must
 * hear (notify_held), else 0.
 */
static uint32_t hold(struct listener *l, struct event *e)
{
	uint32_t n;
	int first;

	uv_mutex_lock(&l->lock);
	first = l->held_head == NULL;
	if (l->held_tail != NULL)
		l->held_tail->next = e;
	else
		l->held_head = e;
	l->held_tail = e;
	n = ++l->n_held;
	uv_mutex_unlock(&l->lock);
	return first || n % l->journal.batch == 0 ? n : 0;
}

/* Tells JavaScript that `n` entries are held (after the hook's answer: it waits for nothing here). */
static void notify_held(struct listener *l, uint32_t n)
{
	struct event *notice = calloc(1, sizeof(*notice));

	if (notice == NULL)
		return; /* JavaScript takes them with the next input, or at close */
	notice->kind = EV_HELD;
	notice->seq = n;
	if (napi_call_threadsafe_function(l->tsfn, notice, napi_tsfn_nonblocking) != napi_ok)
		free(notice);
}

static struct event *new_event(enum event_kind kind, int64_t id)
{
	struct event *e = calloc(1, sizeof(*e));

	if (e != NULL) {
		e->kind = kind;
		e->id = id;
	}
	return e;
}

/* Calls a JavaScript callback; a throw becomes an uncaught exception. */
static void call_js(napi_env env, napi_ref fn_ref, size_t argc, napi_value *argv)
{
	napi_value fn, recv, err;
	napi_status status;

	if (napi_get_reference_value(env, fn_ref, &fn) != napi_ok || napi_get_global(env, &recv) != napi_ok)
		napi_fatal_error("jobcompd hook listener", NAPI_AUTO_LENGTH, "cannot reach the JavaScript callback", NAPI_AUTO_LENGTH);
	status = napi_call_function(env, recv, fn, argc, argv, NULL);
	if (status == napi_pending_exception && napi_get_and_clear_last_exception(env, &err) == napi_ok)
		napi_fatal_exception(env, err);
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
	free(l->journal.unapplied);
	free(l->journal.queue);
	l->allowed = NULL;
	l->slots = NULL;
	l->free_slots = NULL;
	l->uses = NULL;
	l->journal.unapplied = NULL;
	l->journal.queue = NULL;
	l->n_slots = 0;
}

static void on_main_idle_closed(uv_handle_t *h)
{
	struct listener *l = h->data;

	l->main_idle_closed = 1;
}

/* The listener's thread has ended: its loop is closed and JavaScript hears done(). */
static void finish(napi_env env, struct listener *l)
{
	struct command *c, *next;

	uv_thread_join(&l->thread);
	uv_loop_close(&l->loop);
	for (c = l->cmd_head; c != NULL; c = next) {
		next = c->next;
		free(c->bytes);
		free(c);
	}
	l->cmd_head = l->cmd_tail = NULL;
	for (c = l->out_head; c != NULL; c = next) {
		next = c->next;
		free(c->bytes);
		free(c);
	}
	l->out_head = l->out_tail = NULL;
	uv_close((uv_handle_t *)&l->main_idle, on_main_idle_closed);
	free_tables(l);
	l->finished = 1;
	call_js(env, l->on_closed, 0, NULL);
	napi_delete_reference(env, l->on_input);
	napi_delete_reference(env, l->on_refused);
	napi_delete_reference(env, l->on_journal_error);
	if (l->on_held != NULL)
		napi_delete_reference(env, l->on_held);
	napi_delete_reference(env, l->on_closed);
	napi_release_threadsafe_function(l->tsfn, napi_tsfn_release);
	/* the struct itself is freed with the JavaScript value that holds it (finalize) */
}

/* On the JavaScript thread: one event, in the order the thread posted them. */
static void deliver_one(napi_env env, struct listener *l, struct event *e)
{
	napi_value argv[6];
	void *copy;

	switch (e->kind) {
	case EV_INPUT:
		if (napi_create_int64(env, e->id, &argv[0]) == napi_ok &&
		    napi_create_buffer_copy(env, e->len, e->bytes != NULL ? e->bytes : "", &copy, &argv[1]) == napi_ok &&
		    napi_get_boolean(env, e->ended, &argv[2]) == napi_ok && napi_create_int64(env, e->seq, &argv[3]) == napi_ok &&
		    napi_create_int64(env, e->end, &argv[4]) == napi_ok && napi_create_double(env, e->answered_at, &argv[5]) == napi_ok)
			call_js(env, l->on_input, 6, argv);
		else
			napi_fatal_error("jobcompd hook listener", NAPI_AUTO_LENGTH, "cannot hand a message to JavaScript", NAPI_AUTO_LENGTH);
		break;
	case EV_REFUSED:
		if (napi_create_int64(env, e->id, &argv[0]) == napi_ok && napi_create_int64(env, e->uid, &argv[1]) == napi_ok &&
		    napi_create_int64(env, e->gid, &argv[2]) == napi_ok && napi_create_int64(env, e->pid, &argv[3]) == napi_ok &&
		    (e->bytes == NULL ? napi_get_undefined(env, &argv[4]) : napi_create_string_utf8(env, e->bytes, e->len, &argv[4])) == napi_ok)
			call_js(env, l->on_refused, 5, argv);
		else
			napi_fatal_error("jobcompd hook listener", NAPI_AUTO_LENGTH, "cannot hand a refusal to JavaScript", NAPI_AUTO_LENGTH);
		break;
	case EV_JOURNAL_ERROR:
		if (napi_create_string_utf8(env, e->bytes != NULL ? e->bytes : "", e->len, &argv[0]) == napi_ok)
			call_js(env, l->on_journal_error, 1, argv);
		break;
	case EV_HELD:
		/* a notice sent before the listener finished may arrive after it: nothing is held then */
		if (!l->finished && napi_create_int64(env, e->seq, &argv[0]) == napi_ok)
			call_js(env, l->on_held, 1, argv);
		break;
	case EV_CLOSED:
		finish(env, l);
		break;
	}
}

/* On the JavaScript thread: a turn's events, in order. */
static void deliver(napi_env env, napi_value js_cb, void *context, void *data)
{
	struct listener *l = context;
	struct event *e, *next;
	napi_handle_scope scope;

	(void)js_cb;
	for (e = data; e != NULL; e = next) {
		next = e->next;
		if (env != NULL) {
			if (napi_open_handle_scope(env, &scope) != napi_ok)
				napi_fatal_error("jobcompd hook listener", NAPI_AUTO_LENGTH, "cannot open a handle scope", NAPI_AUTO_LENGTH);
			deliver_one(env, l, e);
			napi_close_handle_scope(env, scope);
		}
		free(e->bytes);
		free(e);
	}
}

/* ---- connections (the listener's thread) ---- */

static void on_handle_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	struct event *e;

	if (--l->handles_left > 0)
		return;
	/* the loop has nothing left: uv_run returns and the thread ends; JavaScript joins it */
	e = new_event(EV_CLOSED, 0);
	if (e == NULL)
		napi_fatal_error("jobcompd hook listener", NAPI_AUTO_LENGTH, "out of memory", NAPI_AUTO_LENGTH);
	post(l, e); /* sent at once: the handles are closing */
}

static void maybe_finish(struct listener *l)
{
	if (!l->closing || l->live > 0 || l->journal.queued > 0 || l->handles_closing)
		return;
	send_events(l);
	l->handles_closing = 1;
	l->handles_left = 3;
	uv_mutex_lock(&l->lock);
	l->taking_commands = 0;
	uv_mutex_unlock(&l->lock);
	uv_close((uv_handle_t *)&l->flush, on_handle_closed);
	uv_close((uv_handle_t *)&l->sweep, on_handle_closed);
	uv_close((uv_handle_t *)&l->wake, on_handle_closed);
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

static void not_arriving(struct listener *l)
{
	__atomic_sub_fetch(&l->arriving, 1, __ATOMIC_RELAXED);
}

static void close_conn(struct conn *c)
{
	if (c->state == CLOSING)
		return;
	if (c->state == READING)
		not_arriving(c->l);
	c->state = CLOSING;
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static struct conn *conn_of(struct listener *l, int64_t id)
{
	struct conn *c = id >= 0 && l->n_slots > 0 ? l->slots[id % l->n_slots] : NULL;

	return c != NULL && c->id == id ? c : NULL;
}

/* A message's bytes, for JavaScript, which owns them from then on; NULL: out of memory. */
static struct event *input_event(int64_t id, char *bytes, size_t len, int ended)
{
	struct event *e = new_event(EV_INPUT, id);

	if (e != NULL) {
		e->bytes = bytes;
		e->len = len;
		e->ended = ended;
	}
	return e;
}

/* A message to be answered in JavaScript goes there with the turn's events; -1: out of memory. */
static int post_input(struct listener *l, int64_t id, char *bytes, size_t len, int ended)
{
	struct event *e = input_event(id, bytes, len, ended);

	if (e == NULL)
		return -1;
	post(l, e);
	return 0;
}

static void journal_applied(struct journal *j, uint64_t seq)
{
	uint32_t n = 0;

	while (n < j->n_unapplied && j->unapplied[n].seq <= seq)
		n++;
	memmove(j->unapplied, j->unapplied + n, (j->n_unapplied - n) * sizeof(*j->unapplied));
	j->n_unapplied -= n;
	/* with none left, the next entry goes to the start: the file's first pages stay in use */
	if (j->n_unapplied == 0)
		j->head = JOURNAL_HEADER_BYTES;
}

/*
 * Where an entry of `len` bytes goes: after the last one placed, or at the start, never over
 * an entry not yet applied. 0: no room.
 */
static uint64_t journal_offset_for(struct journal *j, uint64_t len)
{
	struct span *first = j->n_unapplied > 0 ? &j->unapplied[0] : NULL;

	if (first == NULL)
		return JOURNAL_HEADER_BYTES + len <= j->size ? JOURNAL_HEADER_BYTES : 0;
	if (j->head > first->offset) {
		if (j->head + len <= j->size)
			return j->head;
		return JOURNAL_HEADER_BYTES + len <= first->offset ? JOURNAL_HEADER_BYTES : 0;
	}
	return j->head + len <= first->offset ? j->head : 0;
}

/* An array of `n` items of `size` bytes grown (doubled) so that one more fits; -1: out of memory. */
static int room_for_one(void **items, uint32_t n, uint32_t *cap, size_t size)
{
	uint32_t want = *cap == 0 ? 16 : *cap * 2;
	void *grown;

	if (n < *cap)
		return 0;
	grown = realloc(*items, want * size);
	if (grown == NULL)
		return -1;
	*items = grown;
	*cap = want;
	return 0;
}

/* The whole message of a lone connection, placed in the journal to be written at the end of this turn; 0 when not. */
static int journal_place(struct conn *c)
{
	struct listener *l = c->l;
	struct journal *j = &l->journal;
	uint64_t body = c->len - HEADER_BYTES, len = ENTRY_HEADER_BYTES + body, offset;
	struct journal_write *w;
	unsigned char *entry;

	if (j->fd < 0 || j->failed || l->live != 1 || l->closing)
		return 0;
	journal_applied(j, __atomic_load_n(&l->applied_seq, __ATOMIC_ACQUIRE));
	offset = journal_offset_for(j, len);
	if (offset == 0)
		return 0;
	if (room_for_one((void **)&j->unapplied, j->n_unapplied, &j->cap_unapplied, sizeof(*j->unapplied)) < 0 ||
	    room_for_one((void **)&j->queue, j->queued, &j->queue_cap, sizeof(*j->queue)) < 0)
		return 0;
	entry = malloc(len);
	if (entry == NULL)
		return 0;
	memcpy(entry, "JCJ1", 4);
	put_u64(entry + 8, j->epoch);
	put_u64(entry + 16, j->next_seq);
	put_u32(entry + 24, (uint32_t)body);
	memcpy(entry + ENTRY_HEADER_BYTES, c->buf + HEADER_BYTES, body);
	put_u32(entry + 4, crc32c(entry + 8, len - 8));
	w = &j->queue[j->queued++];
	w->id = c->id;
	w->at.seq = j->next_seq++;
	w->at.offset = offset;
	w->at.end = offset + len;
	w->entry = (char *)entry;
	w->entry_len = len;
	w->message = c->buf;
	w->message_len = c->len;
	c->buf = NULL;
	c->len = c->cap = 0;
	j->unapplied[j->n_unapplied++] = w->at;
	j->head = w->at.end;
	uv_check_start(&l->flush, flush_cb);
	return 1;
}

static void hand_over(struct conn *c, int ended)
{
	struct listener *l = c->l;

	uv_read_stop((uv_stream_t *)&c->pipe);
	c->state = WAITING;
	c->deadline = 0;
	not_arriving(l);
	if (!ended && c->expected > 0 && c->len == c->expected && journal_place(c))
		return;
	if (post_input(l, c->id, c->buf, c->len, ended) < 0) {
		close_conn(c); /* no answer will come: the hook spools the record */
		return;
	}
	c->buf = NULL;
	c->len = c->cap = 0;
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
	uint64_t now = uv_now(&l->loop);
	uint32_t i;

	for (i = 0; i < l->n_slots; i++) {
		struct conn *c = l->slots[i];

		if (c != NULL && c->deadline != 0 && now >= c->deadline)
			close_conn(c);
	}
}

static void refuse(struct conn *c, int64_t uid, int64_t gid, int64_t pid, const char *error)
{
	struct event *e = new_event(EV_REFUSED, c->id);

	c->state = WAITING;
	if (e == NULL || (error != NULL && (e->bytes = strdup(error)) == NULL)) {
		free(e);
		close_conn(c);
		return;
	}
	e->len = error != NULL ? strlen(error) : 0;
	e->uid = uid;
	e->gid = gid;
	e->pid = pid;
	post(c->l, e);
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
	uv_pipe_init(&l->loop, &c->pipe, 0);
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
	c->deadline = uv_now(&l->loop) + l->timeout_ms;
	__atomic_add_fetch(&l->arriving, 1, __ATOMIC_RELAXED);
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
	c->deadline = uv_now(&c->l->loop) + c->l->timeout_ms;
	if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->pipe, shutdown_cb) != 0 ||
	    uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) != 0)
		close_conn(c);
}

/* Writes an answer, then closes or drains; a connection gone, or answered already, is left alone. */
static void send_answer(struct listener *l, int64_t id, const char *data, size_t len, int drain)
{
	struct conn *c = conn_of(l, id);
	uv_buf_t buf;
	int written;

	if (c == NULL || c->state != WAITING)
		return;
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
}

/* ---- the journal's writes (the listener's thread) ---- */

static int write_all(int fd, const char *p, size_t len, uint64_t offset)
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
		offset += (uint64_t)n;
	}
	return 0;
}

static void journal_failed(struct listener *l, int err, const char *what)
{
	struct event *e;
	char msg[256];

	if (l->journal.failed)
		return;
	l->journal.failed = 1;
	snprintf(msg, sizeof(msg), "%s of the hook journal failed: %s", what, strerror(err));
	e = new_event(EV_JOURNAL_ERROR, 0);
	if (e == NULL || (e->bytes = strdup(msg)) == NULL) {
		free(e);
		return;
	}
	e->len = strlen(msg);
	post(l, e);
}

/*
 * The check phase, after this turn's reads: the entries placed go to the file in order, one
 * fdatasync makes them durable, then each connection is answered and its message goes to
 * JavaScript with its entry. Blocking here blocks this thread only. Then the turn's events
 * go to JavaScript in one call.
 */
static void flush_cb(uv_check_t *h)
{
	struct listener *l = h->data;
	struct journal *j = &l->journal;
	static const char prefix[] = "in the hook journal as entry ";
	char answer[5 + sizeof(prefix) + 24];
	int err = 0, n;
	const char *what = "a write";
	uint32_t i, notify;
	struct timespec now;
	struct event *e;

	for (i = 0; i < j->queued && err == 0; i++)
		err = write_all(j->fd, j->queue[i].entry, j->queue[i].entry_len, j->queue[i].at.offset);
	if (err == 0 && j->queued > 0 && j->sync && fdatasync(j->fd) != 0) {
		err = errno;
		what = "the fdatasync";
	}
	if (err != 0)
		journal_failed(l, err, what);
	clock_gettime(CLOCK_REALTIME, &now);
	for (i = 0; i < j->queued; i++) {
		struct journal_write *w = &j->queue[i];
		struct conn *c = conn_of(l, w->id);

		free(w->entry);
		if (err != 0) {
			free(w->message);
			if (c != NULL)
				close_conn(c); /* unanswered: the hook spools the record */
			continue;
		}
		/* durable, so committed, even if its client goes away (the copy it spools is a duplicate) */
		e = input_event(w->id, w->message, w->message_len, 0);
		if (e == NULL)
			napi_fatal_error("jobcompd hook listener", NAPI_AUTO_LENGTH, "out of memory with a journal entry synced", NAPI_AUTO_LENGTH);
		e->seq = (int64_t)w->at.seq;
		e->end = (int64_t)w->at.end;
		e->answered_at = (double)now.tv_sec * 1000 + (double)(now.tv_nsec / 1000000);
		/*
		 * Held only when nothing else goes to JavaScript this turn, so nothing passes them. Nor
		 * can take() pass an older entry on its way to JavaScript: a batch holding one holds an
		 * event of a connection JavaScript must answer, and until then nothing is journaled
		 * (journal_place: live == 1). Held before the answer, so take() after it finds it.
		 */
		notify = 0;
		if (j->batch > 0 && l->batch_head == NULL && !l->closing)
			notify = hold(l, e);
		else
			post(l, e);
		n = snprintf(answer + 5, sizeof(answer) - 5, "%s%llu", prefix, (unsigned long long)w->at.seq);
		answer[0] = 'A';
		put_u32((unsigned char *)answer + 1, (uint32_t)n);
		send_answer(l, w->id, answer, 5 + (size_t)n, 0);
		if (notify > 0)
			notify_held(l, notify);
	}
	j->queued = 0;
	if (l->batch_head != NULL)
		send_events(l);
	uv_check_stop(h);
	maybe_finish(l);
}

/* ---- commands: JavaScript to this thread ---- */

static void start_closing(struct listener *l)
{
	uint32_t i;

	if (l->closing)
		return;
	l->closing = 1;
	uv_close((uv_handle_t *)&l->server, NULL);
	for (i = 0; i < l->n_slots; i++)
		if (l->slots[i] != NULL && l->slots[i]->state == READING && l->slots[i]->len == 0)
			close_conn(l->slots[i]);
	maybe_finish(l);
}

static void wake_cb(uv_async_t *h)
{
	struct listener *l = h->data;
	struct command *c, *next;

	uv_mutex_lock(&l->lock);
	c = l->cmd_head;
	l->cmd_head = l->cmd_tail = NULL;
	uv_mutex_unlock(&l->lock);
	for (; c != NULL; c = next) {
		next = c->next;
		switch (c->kind) {
		case CMD_ANSWER:
			send_answer(l, c->id, c->bytes, c->len, c->drain);
			break;
		case CMD_CLOSE:
			start_closing(l);
			break;
		}
		free(c->bytes);
		free(c);
	}
}

/* On the JavaScript thread: the commands so far go to the thread in one wake; dropped once it takes no more. */
static void send_commands(struct listener *l)
{
	struct command *c = l->out_head, *next;
	int taken;

	if (c == NULL)
		return;
	l->out_head = l->out_tail = NULL;
	uv_mutex_lock(&l->lock);
	taken = l->taking_commands;
	if (taken) {
		if (l->cmd_tail != NULL)
			l->cmd_tail->next = c;
		else
			l->cmd_head = c;
		for (l->cmd_tail = c; l->cmd_tail->next != NULL; l->cmd_tail = l->cmd_tail->next)
			;
		uv_async_send(&l->wake);
	}
	uv_mutex_unlock(&l->lock);
	for (; !taken && c != NULL; c = next) {
		next = c->next;
		free(c->bytes);
		free(c);
	}
}

static void main_idle_cb(uv_idle_t *h)
{
	uv_idle_stop(h);
	send_commands(h->data);
}

/*
 * On the JavaScript thread: a command, sent with the others of this turn of Node's loop
 * (its idle phase, before the next poll): a group commit answers dozens of hooks at once,
 * and the thread wakes once for them, not once each (docs/benchmark-rounds.md, eleventh session).
 */
static void command(struct listener *l, struct command *c)
{
	/* after close() is done no connection is left to answer (each is answered before it ends): nothing to send */
	if (l->finished) {
		free(c->bytes);
		free(c);
		return;
	}
	if (l->out_tail != NULL)
		l->out_tail->next = c;
	else
		l->out_head = c;
	l->out_tail = c;
	uv_idle_start(&l->main_idle, main_idle_cb);
}

static void run(void *arg)
{
	struct listener *l = arg;

	uv_run(&l->loop, UV_RUN_DEFAULT);
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

/* opts.journal, when there is one: 0, or -1 (a TypeError is thrown) */
static int get_journal(napi_env env, napi_value opts, struct journal *j)
{
	napi_value v, field;
	napi_valuetype type;
	int64_t fd, bytes, epoch, next_seq, batch = 0;
	bool has, do_sync;

	j->fd = -1;
	if (napi_has_named_property(env, opts, "journal", &has) != napi_ok || !has || napi_get_named_property(env, opts, "journal", &v) != napi_ok ||
	    napi_typeof(env, v, &type) != napi_ok || type == napi_undefined)
		return 0;
	if (napi_get_named_property(env, v, "fd", &field) != napi_ok || napi_get_value_int64(env, field, &fd) != napi_ok || fd < 0 || fd > INT32_MAX ||
	    get_positive_property(env, v, "bytes", &bytes) < 0 || bytes <= JOURNAL_HEADER_BYTES ||
	    get_positive_property(env, v, "epoch", &epoch) < 0 || get_positive_property(env, v, "nextSeq", &next_seq) < 0 ||
	    napi_get_named_property(env, v, "sync", &field) != napi_ok || napi_get_value_bool(env, field, &do_sync) != napi_ok ||
	    napi_has_named_property(env, v, "batch", &has) != napi_ok || (has && (get_positive_property(env, v, "batch", &batch) < 0 || batch > UINT32_MAX))) {
		napi_throw_type_error(env, NULL, "journal: { fd, bytes, epoch, nextSeq, sync, batch? }");
		return -1;
	}
	j->batch = (uint32_t)batch;
	j->fd = (int)fd;
	j->size = (uint64_t)bytes;
	j->epoch = (uint64_t)epoch;
	j->next_seq = (uint64_t)next_seq;
	j->head = JOURNAL_HEADER_BYTES;
	j->sync = do_sync;
	return 0;
}

static struct listener *listener_of(napi_env env, napi_value v)
{
	void *p = NULL;

	if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL)
		napi_throw_type_error(env, NULL, "not a hook listener");
	return p;
}

/* A listener never closed keeps its thread and its memory. */
static void finalize_listener(napi_env env, void *data, void *hint)
{
	struct listener *l = data;

	(void)env;
	(void)hint;
	if ((l->finished && l->main_idle_closed) || !l->thread_started) {
		uv_mutex_destroy(&l->lock);
		free(l);
	}
}

static napi_value js_listen(napi_env env, napi_callback_info info)
{
	size_t argc = 6, path_len;
	napi_value argv[6], uids, v, name, result;
	napi_valuetype type;
	char path[4096];
	int64_t max_message, timeout_ms, connections;
	uint32_t max_connections, i;
	struct listener *l;
	int r;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
	    napi_get_value_string_utf8(env, argv[0], path, sizeof(path), &path_len) != napi_ok ||
	    get_positive_property(env, argv[1], "maxMessageBytes", &max_message) < 0 ||
	    get_positive_property(env, argv[1], "timeoutMs", &timeout_ms) < 0 ||
	    get_positive_property(env, argv[1], "maxConnections", &connections) < 0 ||
	    napi_get_named_property(env, argv[1], "allowedUids", &uids) != napi_ok) {
		napi_throw_type_error(env, NULL, "listen(path, { maxMessageBytes, timeoutMs, maxConnections, allowedUids, journal? }, onInput, onRefused, onJournalError, onHeld?)");
		return NULL;
	}
	/* no process has more descriptors open than this: a larger MaxConnections changes nothing */
	max_connections = connections > MAX_SLOTS ? MAX_SLOTS : (uint32_t)connections;
	l = calloc(1, sizeof(*l));
	if (l == NULL || uv_mutex_init(&l->lock) != 0) {
		free(l);
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	if (napi_create_external(env, l, finalize_listener, NULL, &result) != napi_ok) {
		uv_mutex_destroy(&l->lock);
		free(l);
		return NULL;
	}
	/* from here on, l is freed with `result` */
	if (napi_get_array_length(env, uids, &l->n_allowed) != napi_ok) {
		napi_throw_type_error(env, NULL, "allowedUids must be an array of uids");
		return NULL;
	}
	if (get_journal(env, argv[1], &l->journal) < 0)
		return NULL;
	if (l->journal.batch > 0 && (argc < 6 || napi_typeof(env, argv[5], &type) != napi_ok || type != napi_function)) {
		napi_throw_type_error(env, NULL, "journal.batch needs onHeld");
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
		free_tables(l);
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	for (i = 0; i < l->n_allowed; i++) {
		if (napi_get_element(env, uids, i, &v) != napi_ok || napi_get_value_uint32(env, v, &l->allowed[i]) != napi_ok) {
			free_tables(l);
			napi_throw_type_error(env, NULL, "allowedUids must be an array of uids");
			return NULL;
		}
	}
	for (i = 0; i < max_connections; i++)
		l->free_slots[i] = max_connections - 1 - i;
	l->n_free = max_connections;
	r = uv_loop_init(&l->loop);
	if (r != 0) {
		free_tables(l);
		return throw_uv(env, "a loop for the hook listener", r);
	}
	uv_pipe_init(&l->loop, &l->server, 0);
	l->server.data = l;
	r = uv_pipe_bind(&l->server, path);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&l->server, 511, connection_cb);
	if (r != 0) {
		uv_close((uv_handle_t *)&l->server, NULL);
		uv_run(&l->loop, UV_RUN_DEFAULT);
		uv_loop_close(&l->loop);
		free_tables(l);
		return throw_uv(env, path, r);
	}
	uv_timer_init(&l->loop, &l->sweep);
	l->sweep.data = l;
	uv_check_init(&l->loop, &l->flush);
	l->flush.data = l;
	uv_async_init(&l->loop, &l->wake, wake_cb);
	l->wake.data = l;
	if (napi_get_uv_event_loop(env, &l->main_loop) != napi_ok || uv_idle_init(l->main_loop, &l->main_idle) != 0)
		napi_fatal_error("jobcompd hook listener", NAPI_AUTO_LENGTH, "no event loop", NAPI_AUTO_LENGTH);
	l->main_idle.data = l;
	l->taking_commands = 1;
	uv_timer_start(&l->sweep, sweep_cb, l->timeout_ms / 4 > 10 ? l->timeout_ms / 4 : 10, l->timeout_ms / 4 > 10 ? l->timeout_ms / 4 : 10);
	if (napi_create_reference(env, argv[2], 1, &l->on_input) != napi_ok ||
	    napi_create_reference(env, argv[3], 1, &l->on_refused) != napi_ok ||
	    napi_create_reference(env, argv[4], 1, &l->on_journal_error) != napi_ok ||
	    (l->journal.batch > 0 && napi_create_reference(env, argv[5], 1, &l->on_held) != napi_ok) ||
	    napi_create_string_utf8(env, "jobcompd-hook-listener", NAPI_AUTO_LENGTH, &name) != napi_ok ||
	    napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, l, deliver, &l->tsfn) != napi_ok)
		napi_fatal_error("jobcompd hook listener", NAPI_AUTO_LENGTH, "cannot set up the listener's callbacks", NAPI_AUTO_LENGTH);
	if (crc_table[1] == 0)
		crc_init();
	r = uv_thread_create(&l->thread, run, l);
	if (r != 0)
		napi_fatal_error("jobcompd hook listener", NAPI_AUTO_LENGTH, "cannot start the listener's thread", NAPI_AUTO_LENGTH);
	l->thread_started = 1;
	return result;
}

static char *copy_bytes(const void *data, size_t len)
{
	char *p = malloc(len > 0 ? len : 1);

	if (p != NULL)
		memcpy(p, data, len);
	return p;
}

static napi_value js_answer(napi_env env, napi_callback_info info)
{
	size_t argc = 4, len;
	napi_value argv[4];
	struct listener *l;
	struct command *c;
	int64_t id;
	void *data;
	bool drain;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || (l = listener_of(env, argv[0])) == NULL ||
	    napi_get_value_int64(env, argv[1], &id) != napi_ok || napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok ||
	    napi_get_value_bool(env, argv[3], &drain) != napi_ok) {
		napi_throw_type_error(env, NULL, "answer(listener, id, bytes, drain)");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->bytes = copy_bytes(data, len)) == NULL) {
		free(c);
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	c->kind = CMD_ANSWER;
	c->id = id;
	c->len = len;
	c->drain = drain;
	command(l, c);
	return NULL;
}

static napi_value js_applied(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	struct listener *l;
	int64_t seq;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || (l = listener_of(env, argv[0])) == NULL ||
	    napi_get_value_int64(env, argv[1], &seq) != napi_ok || seq < 0) {
		napi_throw_type_error(env, NULL, "applied(listener, seq)");
		return NULL;
	}
	/* marks only grow (the state file's transactions commit in order) */
	__atomic_store_n(&l->applied_seq, (uint64_t)seq, __ATOMIC_RELEASE);
	return NULL;
}

static napi_value js_arriving(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1], result;
	struct listener *l;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || (l = listener_of(env, argv[0])) == NULL)
		return NULL;
	napi_create_uint32(env, __atomic_load_n(&l->arriving, __ATOMIC_RELAXED), &result);
	return result;
}

/* The entries held for take(), handed to onInput now, in order; none once the listener has finished. */
static napi_value js_take(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	struct listener *l;
	struct event *tail;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1 && (l = listener_of(env, argv[0])) != NULL && !l->finished)
		deliver(env, NULL, l, take_held(l, &tail));
	return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	struct listener *l;
	struct command *c;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || (l = listener_of(env, argv[0])) == NULL)
		return NULL;
	if (l->close_called) {
		napi_throw_error(env, NULL, "the hook listener is closed already");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || napi_create_reference(env, argv[1], 1, &l->on_closed) != napi_ok) {
		free(c);
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	l->close_called = 1;
	c->kind = CMD_CLOSE;
	command(l, c);
	uv_idle_stop(&l->main_idle);
	send_commands(l);
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
		{ "applied", js_applied },
		{ "arriving", js_arriving },
		{ "take", js_take },
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
