/*
 * peerCredentials(fd): the kernel-verified credentials of the process at the other end of
 * a connected Unix socket (getsockopt SO_PEERCRED), as { pid, uid, gid }. Node has no API
 * for it; jobcompd uses it to check who talks to its hook socket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static napi_value throw_errno(napi_env env, const char *what)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(errno));
	napi_throw_error(env, "E_PEERCRED", msg);
	return NULL;
}

static napi_status set_int(napi_env env, napi_value obj, const char *key, int64_t v)
{
	napi_value n;
	napi_status s = napi_create_int64(env, v, &n);

	return s == napi_ok ? napi_set_named_property(env, obj, key, n) : s;
}

static napi_value peer_credentials(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1], result;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int32_t fd;

	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
	    napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
		napi_throw_type_error(env, NULL, "peerCredentials(fd): fd must be a number");
		return NULL;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return throw_errno(env, "getsockopt(SO_PEERCRED)");
	if (napi_create_object(env, &result) != napi_ok || set_int(env, result, "pid", cred.pid) != napi_ok ||
	    set_int(env, result, "uid", cred.uid) != napi_ok || set_int(env, result, "gid", cred.gid) != napi_ok)
		return NULL;
	return result;
}

static napi_value init(napi_env env, napi_value exports)
{
	napi_value fn;

	if (napi_create_function(env, "peerCredentials", NAPI_AUTO_LENGTH, peer_credentials, NULL, &fn) != napi_ok ||
	    napi_set_named_property(env, exports, "peerCredentials", fn) != napi_ok)
		return NULL;
	return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
