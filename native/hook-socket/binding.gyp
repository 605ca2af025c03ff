{
  "targets": [
    {
      "target_name": "hook_socket",
      "sources": ["hook-listener.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror"]
    }
  ]
}
