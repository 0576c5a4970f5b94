# SPDX-License-Identifier: Apache-2.0
# securemqtt_generate_export_header(target file): the generated export.hpp (SECUREMQTT_EXPORT
# and friends), plus two macros for MSVC's DLL-interface warnings. Also used by
# scripts/check-windows, so that its export.hpp is the one a Windows build generates.
include_guard(GLOBAL)
include(GenerateExportHeader)

function(securemqtt_generate_export_header target file)
  # MSVC warns when an exported class has a base class (C4275: std::runtime_error) or a
  # non-static data member (C4251: std::unique_ptr, std::shared_ptr, std::function,
  # std::atomic, option structs) whose type is not exported too: client code then uses the
  # standard library's inline code compiled by itself, not the DLL's. That is harmless when the
  # library and its users are built with the same toolset and the same C runtime (/MD or /MDd
  # alike), which a C++ interface across a DLL needs anyway; the members concerned are private
  # (pimpl) or only read inline. The public headers wrap their exported classes in these.
  set(extra [=[
#if defined(_MSC_VER)
#  define SECUREMQTT_DLL_INTERFACE_WARNINGS_PUSH __pragma(warning(push)) __pragma(warning(disable : 4251 4275))
#  define SECUREMQTT_DLL_INTERFACE_WARNINGS_POP __pragma(warning(pop))
#else
#  define SECUREMQTT_DLL_INTERFACE_WARNINGS_PUSH
#  define SECUREMQTT_DLL_INTERFACE_WARNINGS_POP
#endif]=])
  generate_export_header(${target}
    BASE_NAME SECUREMQTT
    EXPORT_FILE_NAME "${file}"
    CUSTOM_CONTENT_FROM_VARIABLE extra)
endfunction()
