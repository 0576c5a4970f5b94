// SPDX-License-Identifier: Apache-2.0
#include <securemqtt/securemqtt.hpp>

namespace securemqtt {

std::string_view version() noexcept { return SECUREMQTT_VERSION_STRING; }

}  // namespace securemqtt
