// napi's platform name of this machine (`linux-x64-gnu`, `darwin-arm64`,
// `win32-x64-msvc`): the suffix of the addon's file name. Shared by
// install.js and build.mjs.
'use strict';

function platformArchABI() {
  const arch = process.arch;
  if (process.platform === 'linux') {
    const glibc = process.report?.getReport?.()?.header?.glibcVersionRuntime;
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (process.platform === 'win32') return `win32-${arch}-msvc`;
  return `${process.platform}-${arch}`;
}

module.exports = { platformArchABI };
