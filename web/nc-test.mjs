import { launchChromium } from "./e2e/browser.mjs";
const b = await launchChromium();
const p = await (await b.newContext()).newPage();
let ok=0, bad=[];
for (let i=0;i<8;i++){ try { await p.goto("http://127.0.0.1:8765/"); ok++; } catch(e){ bad.push(e.message.split("\n")[0]); } }
console.log("ok", ok, "bad", bad);
await b.close();
