{
  "targets": [
    {
      "target_name": "sreg_fuse",
      "sources": ["src/addon.c", "src/session.c", "src/ops.c", "src/fastread.c", "src/passthrough.c"],
      "cflags": ["<!@(pkg-config --cflags fuse3)", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "libraries": ["<!@(pkg-config --libs fuse3)", "-lpthread"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
