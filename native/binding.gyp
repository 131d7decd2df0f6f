# The cpu backend's native kernels (engine/backend/cpu/native.ts loads build/Release/lora_studio_cpu.node).
# One N-API module for Node and Electron alike (N-API is ABI-stable: no rebuild per Electron version). The kernels are
# compiled once per instruction set, each translation unit with its own flags, and chosen at load time by cpuid.
# -ffp-contract=off everywhere: the compiler must not fuse a·b + c on its own, or ISAs would round differently.
{
  "target_defaults": {
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
    "cflags": ["-O3", "-fPIC", "-ffp-contract=off", "-fvisibility=hidden"],
    "cflags_cc": ["-std=c++17", "-fexceptions"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "GCC_OPTIMIZATION_LEVEL": "3",
      "OTHER_CFLAGS": ["-ffp-contract=off"],
      "OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off"],
      "MACOSX_DEPLOYMENT_TARGET": "11.0"
    },
    "msvs_settings": {
      "VCCLCompilerTool": {
        "ExceptionHandling": 1,
        "Optimization": 2,
        "AdditionalOptions": ["/std:c++17", "/fp:precise"]
      }
    }
  },
  "targets": [
    {
      "target_name": "lora_studio_cpu",
      "sources": ["src/addon.cpp", "src/ops.cpp", "src/pool.cpp", "src/cpu-features.cpp", "src/kernels-scalar.cpp"],
      "conditions": [
        ["target_arch=='x64'", {
          "dependencies": ["kernels_avx512", "kernels_avx2"],
          "defines": ["LS_HAVE_AVX512", "LS_HAVE_AVX2"]
        }],
        ["target_arch=='arm64'", {
          "dependencies": ["kernels_neon"],
          "defines": ["LS_HAVE_NEON"]
        }],
        ["OS=='linux'", { "libraries": ["-lpthread"] }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "kernels_avx512",
          "type": "static_library",
          "sources": ["src/kernels-avx512.cpp"],
          "cflags": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"] },
          "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17", "/fp:precise", "/arch:AVX512"] } }
        },
        {
          "target_name": "kernels_avx2",
          "type": "static_library",
          "sources": ["src/kernels-avx2.cpp"],
          "cflags": ["-mavx2", "-mfma", "-mf16c"],
          "xcode_settings": { "OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off", "-mavx2", "-mfma", "-mf16c"] },
          "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17", "/fp:precise", "/arch:AVX2"] } }
        }
      ]
    }],
    ["target_arch=='arm64'", {
      "targets": [
        {
          "target_name": "kernels_neon",
          "type": "static_library",
          "sources": ["src/kernels-neon.cpp"]
        }
      ]
    }]
  ]
}
