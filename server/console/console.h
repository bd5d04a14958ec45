// The web console (DESIGN.md 9): the team's static HTML, CSS and JavaScript modules from
// server/console/web/, compiled into the binary (embed.cmake generates the file table at build
// time), and the answers that serve them: GET / is index.html, GET /console/<name> any other
// file. Every answer carries the console's security headers (a Content-Security-Policy that
// allows only this origin's scripts and styles, frame-ancestors 'none', nosniff, no referrer)
// and is revalidated by ETag (Cache-Control: no-cache), so a new binary's files are seen at
// once. The page calls only the admin API; nothing here reads a session.
// Thread-safety: the table is immutable; its routes may run on any thread.
#pragma once

#include <span>
#include <string_view>

#include "server/http/message.h"
#include "server/http/router.h"

namespace warden::server::console {

struct File {
  std::string_view name;          // "index.html", "app.js", ...
  std::string_view content_type;  // from the extension
  std::string_view body;
  std::string_view etag;          // quoted, from the content
};

// Every embedded file, sorted by name.
std::span<const File> Files();

// Adds GET / (index.html) and GET /console/<name> to `router`: the file with the console's
// headers, 304 when If-None-Match names its ETag, 404 (the API's JSON error) when there is no
// such file.
void AddRoutes(Router* router);

}  // namespace warden::server::console
