// What an Electron app's auto-updater does to find and fetch its update, driven through the
// real electron-updater against release-server (tests/test_updaters.py runs it;
// .ci/clients.sh installs electron-updater).
//
// electron-updater's autoUpdater needs Electron's app object and its net module; the part
// that talks to the server is the provider (chosen by electron-updater's own createClient
// from the app's publish configuration) and builder-util-runtime's HttpExecutor. Here they
// run in plain Node with an executor on node:http, which is what electron-builder itself
// uses outside Electron. The thing under test is the server, not Electron.
//
// Inputs (environment):
//   NODE_CLIENTS     the npm --prefix that holds electron-updater
//   CONFIG           the publish configuration, JSON (e.g. {"provider": "github", ...})
//   CURRENT_VERSION  the version the "app" runs
//   ALLOW_PRERELEASE "1" to let it update to a pre-release
//   TOKEN            optional: GH_TOKEN for a private github provider
//
// Prints one JSON document: {ok, provider, version, files: [{url, sha512, size, downloaded:
// {sha512, size}}], requests: [{method, url, status}]}; on failure {ok: false, error}.

"use strict";

const crypto = require("node:crypto");
const http = require("node:http");
const https = require("node:https");
const { createRequire } = require("node:module");
const path = require("node:path");

const clients = createRequire(path.join(process.env.NODE_CLIENTS, "package.json"));
const runtime = clients("builder-util-runtime");
const semver = clients("semver");
const { createClient } = clients("electron-updater/out/providerFactory");

const requests = [];

class NodeHttpExecutor extends runtime.HttpExecutor {
  createRequest(options, callback) {
    const transport = options.protocol === "https:" ? https : http;
    const request = transport.request(options, (response) => {
      requests.push({
        method: options.method || "GET",
        url: `${options.protocol}//${options.hostname}:${options.port}${options.path}`,
        status: response.statusCode,
      });
      callback(response);
    });
    return request;
  }
}

async function main() {
  const config = JSON.parse(process.env.CONFIG);
  if (process.env.TOKEN) process.env.GH_TOKEN = process.env.TOKEN;
  const updater = {
    allowPrerelease: process.env.ALLOW_PRERELEASE === "1",
    currentVersion: semver.parse(process.env.CURRENT_VERSION),
    channel: null,
    fullChangelog: false,
    isAddNoCacheQuery: false,
  };
  const executor = new NodeHttpExecutor();
  const provider = createClient(config, updater, { executor, platform: "linux" });
  const info = await provider.getLatestVersion();
  const files = [];
  for (const file of provider.resolveFiles(info)) {
    // What AppUpdater.downloadUpdate does: the resolved URL, the provider's extra headers
    // (the token and Accept for a private repository), redirects followed.
    const body = await executor.downloadToBuffer(file.url, {
      headers: provider.fileExtraDownloadHeaders || undefined,
      cancellationToken: new runtime.CancellationToken(),
    });
    files.push({
      url: file.url.href,
      sha512: file.info.sha512,
      size: file.info.size,
      downloaded: {
        sha512: crypto.createHash("sha512").update(body).digest("base64"),
        size: body.length,
      },
    });
  }
  return {
    ok: true,
    provider: provider.constructor.name,
    version: info.version,
    tag: info.tag || null,
    files,
  };
}

main()
  .then((result) => console.log(JSON.stringify({ ...result, requests })))
  .catch((error) => {
    console.log(JSON.stringify({ ok: false, error: String(error.stack || error), requests }));
    process.exitCode = 1;
  });
