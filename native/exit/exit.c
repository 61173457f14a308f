/*
 * _exit(2) for bin/dbg, once a command-line run is over:
 *
 *   exitNow(code)   ends the process with `code` at once; returns only on a bad argument
 *
 * Node's own exit, after the last 'exit' listener, tears the process down: it joins V8's worker
 * threads, each finishing the optimizing compile it is in the middle of (code nothing will run),
 * and unmaps the heap. On a loaded machine that is 60-200 ms after the output is complete. By the
 * time the last 'exit' listener runs, the event loop is empty: stdout and stderr were written
 * synchronously (files, pipes and terminals on Linux), files dbg writes are closed, and nothing
 * asynchronous is left, so skipping the teardown loses nothing.
 */
#include <node_api.h>
#include <unistd.h>

static napi_value exit_now(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t code;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 1 || napi_get_value_int32(env, argv[0], &code) != napi_ok) {
    napi_throw_type_error(env, NULL, "exitNow(code): code is not a number");
    return NULL;
  }
  _exit(code & 0xff);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {{"exitNow", NULL, exit_now, NULL, NULL, NULL, napi_default, NULL}};
  napi_define_properties(env, exports, 1, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
