// SPDX-License-Identifier: Apache-2.0
// The umbrella header: everything securemqtt offers, and its version.
#pragma once

#include <securemqtt/bytes.hpp>
#include <securemqtt/clock.hpp>
#include <securemqtt/envelope.hpp>
#include <securemqtt/errors.hpp>
#include <securemqtt/export.hpp>
#include <securemqtt/keyring.hpp>
#include <securemqtt/log.hpp>
#include <securemqtt/metrics.hpp>
#include <securemqtt/mqtt_types.hpp>
#include <securemqtt/outcome.hpp>
#include <securemqtt/properties.hpp>
#include <securemqtt/replay_guard.hpp>
#include <securemqtt/replay_store.hpp>
#include <securemqtt/request_reply.hpp>
#include <securemqtt/secure_session.hpp>
#include <securemqtt/signer.hpp>
#include <securemqtt/tls_options.hpp>
#include <securemqtt/topic.hpp>
#include <securemqtt/verifier.hpp>
#include <securemqtt/version.hpp>

#include <string_view>

namespace securemqtt {

/// The version of the securemqtt library linked at run time, e.g. "0.1.0". Compare it with
/// SECUREMQTT_VERSION_STRING (the headers compiled against) to detect a mismatch.
SECUREMQTT_EXPORT std::string_view version() noexcept;

}  // namespace securemqtt
