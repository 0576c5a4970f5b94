// SPDX-License-Identifier: Apache-2.0
// Catch2 v2's main(), compiled for the target: Debian's catch2 package (Multi-Arch: foreign)
// ships libCatch2WithMain.a built for the host only, which a cross build cannot link.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
