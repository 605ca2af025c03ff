/*
 * jsonc-oracle: answers formatting questions with the real json-c and glibc, for the
 * differential test test/record/json-c-oracle.test.ts.
 *
 * Protocol (all integers little-endian), any number of requests until EOF on stdin:
 *   request:  kind (1 byte) | payload length (uint32) | payload
 *   response: length (uint32) | bytes
 * Kinds:
 *   's'  payload = any bytes  -> json_object_new_string_len + JSON_C_TO_STRING_PLAIN
 *   'j'  payload = double (8) -> json_object_new_double + JSON_C_TO_STRING_PLAIN
 *   'g'  payload = double (8) -> snprintf("%.17g")
 *   'h'  payload = int64 elapsed, int64 total_cpus (16)
 *        -> cpu_hours exactly as jobcomp/kafka computes it, rendered like 'j'
 * A malformed request makes the program exit with status 2 and a message on stderr.
 */
#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *msg)
{
	fprintf(stderr, "jsonc-oracle: %s\n", msg);
	exit(2);
}

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static double get_double(const unsigned char *p)
{
	uint64_t bits = get_le(p, 8);
	double d;
	memcpy(&d, &bits, sizeof d);
	return d;
}

static void put(const char *s, size_t len)
{
	unsigned char hdr[4];
	for (int i = 0; i < 4; i++)
		hdr[i] = (unsigned char)(len >> (8 * i));
	if (len > UINT32_MAX || fwrite(hdr, 1, 4, stdout) != 4 || fwrite(s, 1, len, stdout) != len)
		die("write failed");
}

/* Serialize and release a json object. */
static void put_json(struct json_object *obj)
{
	size_t len = 0;
	const char *s;
	if (!obj)
		die("json-c allocation failed");
	s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
	if (!s)
		die("json-c serialization failed");
	put(s, len);
	json_object_put(obj);
}

int main(void)
{
	unsigned char hdr[5];
	size_t cap = 256;
	unsigned char *buf = malloc(cap);
	size_t got;

	if (!buf)
		die("out of memory");
	while ((got = fread(hdr, 1, sizeof hdr, stdin)) == sizeof hdr) {
		size_t len = (size_t)get_le(hdr + 1, 4);
		if (len > INT_MAX)
			die("payload too long");
		if (len > cap) {
			cap = len;
			buf = realloc(buf, cap);
			if (!buf)
				die("out of memory");
		}
		if (fread(buf, 1, len, stdin) != len)
			die("truncated payload");

		switch (hdr[0]) {
		case 's':
			put_json(json_object_new_string_len((const char *)buf, (int)len));
			break;
		case 'j':
			if (len != 8)
				die("'j' needs 8 bytes");
			put_json(json_object_new_double(get_double(buf)));
			break;
		case 'g': {
			char out[64];
			int n;
			if (len != 8)
				die("'g' needs 8 bytes");
			n = snprintf(out, sizeof out, "%.17g", get_double(buf));
			if (n < 0 || (size_t)n >= sizeof out)
				die("snprintf failed");
			put(out, (size_t)n);
			break;
		}
		case 'h': {
			int64_t elapsed, total_cpus;
			float f;
			double d;
			if (len != 16)
				die("'h' needs 16 bytes");
			elapsed = (int64_t)get_le(buf, 8);
			total_cpus = (int64_t)get_le(buf + 8, 8);
			/* the plugin's arithmetic: int64 product -> float, / 3600.0f, widened */
			f = (float)(elapsed * total_cpus) / 3600.0f;
			d = f;
			put_json(json_object_new_double(d));
			break;
		}
		default:
			die("unknown request kind");
		}
	}
	if (got != 0 || ferror(stdin))
		die("truncated request header");
	free(buf);
	if (fflush(stdout) != 0)
		die("write failed");
	return 0;
}
