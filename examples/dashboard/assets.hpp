// SPDX-License-Identifier: Apache-2.0
// The page, its script and its style sheet (examples/dashboard/*.html|js|css), compiled into
// secure_dashboard by CMake (cmake/... embed step in examples/CMakeLists.txt): the program serves
// everything itself, for machines that are offline.
#pragma once

#include <string_view>

namespace dashboard::assets {

extern const std::string_view index_html;
extern const std::string_view dashboard_js;
extern const std::string_view dashboard_css;

}  // namespace dashboard::assets
