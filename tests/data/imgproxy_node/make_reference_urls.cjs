// Reference URLs for tests/test_builder.py, made with imgproxy's official Node
// URL builder, so our builder is checked against the ecosystem's.
//
//   cd tests/data/imgproxy_node && npm install && node make_reference_urls.cjs
//
// Reads cases.json (each case's options in imgproxy-node's form under "node"),
// writes reference_urls.json: case name -> signed path. The key and salt are
// the clearly fake test pair of tests/conftest.py (imgproxy's documentation pair).
const fs = require("fs");
const { generateImageUrl } = require("@imgproxy/imgproxy-node");

const KEY = "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881";
const SALT = "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5";
const SOURCE = "local:///cup.png";

const cases = JSON.parse(fs.readFileSync(__dirname + "/cases.json", "utf8"));
const urls = {};
for (const item of cases) {
  urls[item.name] = generateImageUrl({
    endpoint: "",
    url: { value: SOURCE, displayAs: item.base64 ? "base64" : "plain" },
    options: item.node,
    key: KEY,
    salt: SALT,
  });
}
const version = JSON.parse(
  fs.readFileSync(require.resolve("@imgproxy/imgproxy-node").replace(/dist\/.*$/, "package.json"), "utf8"),
).version;
fs.writeFileSync(
  __dirname + "/reference_urls.json",
  JSON.stringify({ generator: `@imgproxy/imgproxy-node ${version}`, source: SOURCE, urls }, null, 2) + "\n",
);
console.log(`wrote ${Object.keys(urls).length} URLs`);
