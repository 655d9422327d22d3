// The whole release flow of a publishing script, driven through the real @octokit/rest
// against release-server (tests/test_octokit.py runs it; .ci/clients.sh installs octokit).
//
// Inputs (environment):
//   BASE_URL      the Octokit baseUrl: the server's URL, or the server's URL + "/api/v3"
//   ROOT_URL      the server's URL (where upload_url and browser_download_url must point)
//   TOKEN         a write token (octokit sends it as `Authorization: token <TOKEN>`)
//   OWNER, REPO   the repository (created by the first createRelease)
//   NODE_CLIENTS  the npm --prefix that holds @octokit/rest
//
// Prints one JSON document on stdout: {ok, steps, requests, assets, ...}. Exits 1 on the
// first failed step, naming it with the request and the server's answer.

import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE_URL = env("BASE_URL");
const ROOT_URL = env("ROOT_URL");
const TOKEN = env("TOKEN");
const OWNER = env("OWNER");
const REPO = env("REPO");
const NODE_CLIENTS = env("NODE_CLIENTS");
const require = createRequire(join(NODE_CLIENTS, "package.json"));
const { Octokit } = await import(pathToFileURL(require.resolve("@octokit/rest")).href);
const OCTOKIT_VERSION = JSON.parse(
  readFileSync(join(NODE_CLIENTS, "node_modules", "@octokit", "rest", "package.json"), "utf8"),
).version;

// Every request exactly as it goes on the wire (fetch is the last hop), with the headers
// that matter; the token is masked.
const requests = [];
const SHOWN = ["accept", "content-type", "content-length", "authorization"];
async function loggingFetch(url, init = {}) {
  const headers = {};
  for (const [name, value] of Object.entries(init.headers || {})) {
    const key = name.toLowerCase();
    if (!SHOWN.includes(key)) continue;
    headers[key] = key === "authorization" ? value.replace(TOKEN, "***") : value;
  }
  const body = init.body;
  const entry = { method: init.method || "GET", url: String(url), headers };
  if (body !== undefined && body !== null) {
    entry.body_bytes = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
  }
  requests.push(entry);
  const response = await fetch(url, init);
  entry.status = response.status;
  entry.response_type = response.headers.get("content-type");
  if (response.redirected) entry.redirected_to = response.url;
  return response;
}

const octokit = new Octokit({
  baseUrl: BASE_URL,
  auth: TOKEN,
  userAgent: "release-server-tests",
  request: { fetch: loggingFetch, retries: 0 },
  log: { debug() {}, info() {}, warn: console.error, error: console.error },
});

const summary = { ok: false, octokit: OCTOKIT_VERSION, base_url: BASE_URL, steps: [] };
const owner = OWNER;
const repo = REPO;

class Failure extends Error {}
function check(condition, message, details) {
  if (!condition) {
    const error = new Failure(message);
    error.details = details;
    throw error;
  }
}
function sha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

async function step(name, fn) {
  const started = requests.length;
  try {
    const result = await fn();
    summary.steps.push({ step: name, ok: true });
    return result;
  } catch (error) {
    const failure = { step: name, ok: false, message: error.message };
    if (error.details !== undefined) failure.details = error.details;
    if (error.status !== undefined) failure.status = error.status;
    if (error.request) failure.request = `${error.request.method} ${error.request.url}`;
    if (error.response) failure.response = error.response.data;
    failure.requests = requests.slice(started);
    summary.steps.push(failure);
    summary.failed = failure;
    throw error;
  }
}

// A request that must fail with `status`; returns the error's response body.
async function expectError(status, fn) {
  let response;
  try {
    response = await fn();
  } catch (error) {
    if (error.status === status) return error.response?.data;
    throw error;
  }
  check(false, `expected HTTP ${status}, got ${response.status}`, response.data);
}

function checkAlreadyExists(data, resource, field) {
  check(
    data && Array.isArray(data.errors) && data.errors.some((e) => e.code === "already_exists"),
    `a 422 must carry GitHub's errors: [{resource: "${resource}", code: "already_exists", field: "${field}"}]`,
    data,
  );
  check(data.message === "Validation Failed", 'the 422 message must be "Validation Failed"', data);
}

const files = {
  "tool-1.0.0-linux-amd64.tar.gz": randomBytes(70_000),
  "tool-1.1.0-linux-amd64.tar.gz": randomBytes(150_000),
  "checksums.txt": Buffer.from("0123 tool-1.1.0-linux-amd64.tar.gz\n"),
};
summary.assets = Object.fromEntries(
  Object.entries(files).map(([name, data]) => [name, { size: data.length, sha256: sha256(data) }]),
);
const releases = {};

async function createRelease(tag, extra = {}) {
  const response = await octokit.rest.repos.createRelease({
    owner,
    repo,
    tag_name: tag,
    name: `Tool ${tag}`,
    body: `Release notes for ${tag}.`,
    ...extra,
  });
  check(response.status === 201, `createRelease answers 201, got ${response.status}`);
  const release = response.data;
  check(release.tag_name === tag, "tag_name echoes the tag", release);
  check(release.name === `Tool ${tag}`, "name echoes the name", release);
  check(release.body === `Release notes for ${tag}.`, "body echoes the body", release);
  check(release.draft === false, "draft is false", release);
  check(release.prerelease === Boolean(extra.prerelease), "prerelease echoes the flag", release);
  check(Number.isSafeInteger(release.id) && release.id > 0, "id is a positive integer", release);
  const expected = `${ROOT_URL}/api/uploads/repos/${owner}/${repo}/releases/${release.id}/assets{?name,label}`;
  check(release.upload_url === expected, `upload_url is ${expected}`, release.upload_url);
  check(Array.isArray(release.assets) && release.assets.length === 0, "a new release has no assets", release);
  releases[tag] = release;
  return release;
}

function checkAsset(asset, name, tag) {
  check(asset.name === name, `asset name is ${name}`, asset);
  check(asset.size === files[name].length, `asset size is ${files[name].length}`, asset);
  check(asset.state === "uploaded", "asset state is uploaded", asset);
  const download = `${ROOT_URL}/${owner}/${repo}/releases/download/${tag}/${name}`;
  check(asset.browser_download_url === download, `browser_download_url is ${download}`, asset);
  if (asset.digest !== undefined && asset.digest !== null) {
    check(asset.digest === `sha256:${sha256(files[name])}`, "digest is sha256 of the bytes", asset);
  }
}

try {
  // 1. Releases: v1.0.0 (creates the repository), v1.1.0, then the pre-release v2.0.0-rc.1.
  await step("createRelease v1.0.0", () => createRelease("v1.0.0"));
  await step("createRelease duplicate v1.0.0 -> 422 already_exists", async () => {
    const data = await expectError(422, () =>
      octokit.rest.repos.createRelease({ owner, repo, tag_name: "v1.0.0", name: "again" }),
    );
    checkAlreadyExists(data, "Release", "tag_name");
  });

  // 2. Upload the way most scripts do it: url = the release's upload_url (an RFC 6570
  //    template that octokit expands with name/label); the body is the raw bytes.
  await step("uploadReleaseAsset via upload_url", async () => {
    const name = "tool-1.0.0-linux-amd64.tar.gz";
    const response = await octokit.rest.repos.uploadReleaseAsset({
      owner,
      repo,
      release_id: releases["v1.0.0"].id,
      url: releases["v1.0.0"].upload_url,
      name,
      label: "Linux (amd64)",
      data: files[name],
      headers: { "content-type": "application/gzip", "content-length": files[name].length },
    });
    check(response.status === 201, `uploadReleaseAsset answers 201, got ${response.status}`);
    checkAsset(response.data, name, "v1.0.0");
    check(response.data.label === "Linux (amd64)", "label echoes the label", response.data);
    releases["v1.0.0"].asset = response.data;
  });

  await step("createRelease v1.1.0", () => createRelease("v1.1.0"));

  // 3. Upload the GitHub Enterprise way: no url, baseUrl = <server>/api/uploads. (Without
  //    url or baseUrl octokit posts to https://uploads.github.com: that default is part of
  //    the endpoint's definition and overrides the client's baseUrl; see `upload_default`.)
  summary.upload_default = octokit.rest.repos.uploadReleaseAsset.endpoint({
    owner,
    repo,
    release_id: 1,
    name: "x",
    data: "",
  }).url;
  await step("uploadReleaseAsset via baseUrl <server>/api/uploads", async () => {
    const name = "tool-1.1.0-linux-amd64.tar.gz";
    const response = await octokit.rest.repos.uploadReleaseAsset({
      baseUrl: `${ROOT_URL}/api/uploads`,
      owner,
      repo,
      release_id: releases["v1.1.0"].id,
      name,
      data: files[name],
      headers: { "content-type": "application/octet-stream" },
    });
    check(response.status === 201, `uploadReleaseAsset answers 201, got ${response.status}`);
    checkAsset(response.data, name, "v1.1.0");
    releases["v1.1.0"].asset = response.data;
  });

  // 4. An upload without a content-type: octokit then labels the raw bytes
  //    "application/json; charset=utf-8"; they must still be stored as they are.
  await step("uploadReleaseAsset without content-type (octokit says JSON)", async () => {
    const name = "checksums.txt";
    const response = await octokit.rest.repos.uploadReleaseAsset({
      owner,
      repo,
      release_id: releases["v1.1.0"].id,
      url: releases["v1.1.0"].upload_url,
      name,
      data: files[name],
    });
    check(response.status === 201, `uploadReleaseAsset answers 201, got ${response.status}`);
    checkAsset(response.data, name, "v1.1.0");
    releases["v1.1.0"].checksums = response.data;
  });

  await step("uploadReleaseAsset duplicate name -> 422 already_exists", async () => {
    const name = "tool-1.1.0-linux-amd64.tar.gz";
    const data = await expectError(422, () =>
      octokit.rest.repos.uploadReleaseAsset({
        owner,
        repo,
        release_id: releases["v1.1.0"].id,
        url: releases["v1.1.0"].upload_url,
        name,
        data: Buffer.from("other bytes"),
        headers: { "content-type": "application/octet-stream" },
      }),
    );
    checkAlreadyExists(data, "ReleaseAsset", "name");
  });

  await step("createRelease v2.0.0-rc.1 (prerelease)", () =>
    createRelease("v2.0.0-rc.1", { prerelease: true }),
  );

  // 5. Reading.
  await step("getReleaseByTag v1.1.0", async () => {
    const { status, data } = await octokit.rest.repos.getReleaseByTag({ owner, repo, tag: "v1.1.0" });
    check(status === 200, `getReleaseByTag answers 200, got ${status}`);
    check(data.id === releases["v1.1.0"].id, "the same id as created", data);
    check(data.tag_name === "v1.1.0" && data.prerelease === false, "tag and flags", data);
    const names = data.assets.map((a) => a.name).sort();
    check(
      JSON.stringify(names) === JSON.stringify(["checksums.txt", "tool-1.1.0-linux-amd64.tar.gz"]),
      "both assets are listed",
      names,
    );
  });

  await step("getRelease by id", async () => {
    const { data } = await octokit.rest.repos.getRelease({
      owner,
      repo,
      release_id: releases["v2.0.0-rc.1"].id,
    });
    check(data.tag_name === "v2.0.0-rc.1" && data.prerelease === true, "the pre-release", data);
  });

  await step("listReleases per_page=1 + octokit.paginate (Link)", async () => {
    const before = requests.length;
    const all = await octokit.paginate(octokit.rest.repos.listReleases, { owner, repo, per_page: 1 });
    const tags = all.map((r) => r.tag_name);
    summary.listed = tags;
    check(
      JSON.stringify(tags) === JSON.stringify(["v2.0.0-rc.1", "v1.1.0", "v1.0.0"]),
      "all three releases, newest first",
      tags,
    );
    const pages = requests.slice(before).filter((r) => r.method === "GET");
    check(pages.length === 3, "one request per page (per_page=1), following Link rel=next", pages);
  });

  await step("updateRelease (PATCH) the pre-release's name and body", async () => {
    const { status, data } = await octokit.rest.repos.updateRelease({
      owner,
      repo,
      release_id: releases["v2.0.0-rc.1"].id,
      name: "Tool 2.0 RC 1",
      body: "Edited notes.",
    });
    check(status === 200, `updateRelease answers 200, got ${status}`);
    check(data.name === "Tool 2.0 RC 1" && data.body === "Edited notes.", "the edit shows", data);
    check(data.tag_name === "v2.0.0-rc.1" && data.prerelease === true, "the rest is kept", data);
  });

  await step("getLatestRelease is v1.1.0, not the pre-release", async () => {
    const { data } = await octokit.rest.repos.getLatestRelease({ owner, repo });
    check(data.tag_name === "v1.1.0", `latest is v1.1.0, got ${data.tag_name}`, data.tag_name);
  });

  await step("listReleaseAssets v1.1.0", async () => {
    const assets = await octokit.paginate(octokit.rest.repos.listReleaseAssets, {
      owner,
      repo,
      release_id: releases["v1.1.0"].id,
      per_page: 1,
    });
    const names = assets.map((a) => a.name).sort();
    check(names.length === 2 && names[0] === "checksums.txt", "both assets, over two pages", names);
  });

  await step("getReleaseAsset (JSON)", async () => {
    const asset = releases["v1.1.0"].asset;
    const { data } = await octokit.rest.repos.getReleaseAsset({ owner, repo, asset_id: asset.id });
    checkAsset(data, asset.name, "v1.1.0");
    check(data.id === asset.id, "the same id as uploaded", data);
  });

  for (const [tag, key] of [
    ["v1.1.0", "asset"],
    ["v1.1.0", "checksums"],
    ["v1.0.0", "asset"],
  ]) {
    const asset = releases[tag][key];
    await step(`getReleaseAsset ${asset.name} (accept: application/octet-stream)`, async () => {
      const { data } = await octokit.rest.repos.getReleaseAsset({
        owner,
        repo,
        asset_id: asset.id,
        headers: { accept: "application/octet-stream" },
      });
      check(data instanceof ArrayBuffer, "octokit hands back the bytes (an ArrayBuffer)", {
        type: typeof data,
        value: typeof data === "string" ? data.slice(0, 200) : data,
      });
      const bytes = Buffer.from(data);
      check(bytes.equals(files[asset.name]), "the bytes uploaded", {
        size: bytes.length,
        sha256: sha256(bytes),
      });
    });
  }

  // 6. Deleting: an asset, then a whole release.
  await step("deleteReleaseAsset checksums.txt", async () => {
    const asset = releases["v1.1.0"].checksums;
    const { status } = await octokit.rest.repos.deleteReleaseAsset({ owner, repo, asset_id: asset.id });
    check(status === 204, `deleteReleaseAsset answers 204, got ${status}`);
    await expectError(404, () => octokit.rest.repos.getReleaseAsset({ owner, repo, asset_id: asset.id }));
    const { data } = await octokit.rest.repos.getReleaseByTag({ owner, repo, tag: "v1.1.0" });
    const names = data.assets.map((a) => a.name);
    check(names.length === 1 && names[0] === "tool-1.1.0-linux-amd64.tar.gz", "one asset left", names);
  });

  await step("deleteRelease v1.0.0", async () => {
    const { status } = await octokit.rest.repos.deleteRelease({
      owner,
      repo,
      release_id: releases["v1.0.0"].id,
    });
    check(status === 204, `deleteRelease answers 204, got ${status}`);
  });

  await step("getReleaseByTag v1.0.0 -> 404", async () => {
    await expectError(404, () => octokit.rest.repos.getReleaseByTag({ owner, repo, tag: "v1.0.0" }));
    await expectError(404, () =>
      octokit.rest.repos.getRelease({ owner, repo, release_id: releases["v1.0.0"].id }),
    );
    const all = await octokit.paginate(octokit.rest.repos.listReleases, { owner, repo });
    const tags = all.map((r) => r.tag_name);
    check(JSON.stringify(tags) === JSON.stringify(["v2.0.0-rc.1", "v1.1.0"]), "two releases left", tags);
  });

  summary.ok = true;
  summary.releases = Object.fromEntries(
    Object.entries(releases).map(([tag, r]) => [tag, { id: r.id, upload_url: r.upload_url }]),
  );
} catch (error) {
  if (!summary.failed) summary.failed = { message: String(error?.stack || error) };
}
summary.requests = requests;
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
process.exit(summary.ok ? 0 : 1);
