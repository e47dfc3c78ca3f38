// The vote page: keeps the vote locked until both answers have been heard, reports how the
// clips were heard (with every action on the battle, and as play events while listening),
// and maps the keyboard shortcuts. Listeners sit on the document (audio events in the capture
// phase), so a round swapped in by htmx needs no binding of its own.
(function () {
  "use strict";

  const SLOTS = ["prompt", "a", "b"];
  const TOLERANCE_S = 0.25; // the last moments of a clip the played ranges may miss
  const listening = new WeakMap(); // battle section -> {slot: {listened, last}}

  function battleOf(node) {
    return node && node.closest ? node.closest("section.battle[data-battle]") : null;
  }

  function current() {
    return document.querySelector("#round section.battle[data-battle]");
  }

  function stateOf(section) {
    let state = listening.get(section);
    if (!state) {
      state = {};
      for (const slot of SLOTS) state[slot] = { listened: 0, last: null, ended: false };
      listening.set(section, state);
    }
    return state;
  }

  function audioOf(section, slot) {
    return section.querySelector(`audio[data-slot="${slot}"]`);
  }

  // The share of the clip played at least once: the union of its played ranges.
  function heard(audio) {
    if (!audio || !(audio.duration > 0) || !isFinite(audio.duration)) return 0;
    let covered = 0;
    for (let i = 0; i < audio.played.length; i++) covered += audio.played.end(i) - audio.played.start(i);
    return Math.min(1, covered / audio.duration);
  }

  function isHeard(section, slot) {
    const audio = audioOf(section, slot);
    if (!audio || !(audio.duration > 0)) return false;
    const fraction = parseFloat(section.dataset.listenFraction || "1");
    return heard(audio) * audio.duration >= Math.min(fraction * audio.duration,
                                                       audio.duration - TOLERANCE_S);
  }

  // What the server stores in the play log (app/arena/plays.py).
  function report(section) {
    const state = stateOf(section);
    const data = { listened_s: 0 };
    for (const slot of SLOTS) {
      data[`heard_${slot}`] = heard(audioOf(section, slot)).toFixed(4);
      data[`ended_${slot}`] = state[slot].ended ? "true" : "false";
      data.listened_s += state[slot].listened;
    }
    data.listened_s = data.listened_s.toFixed(3);
    return data;
  }

  function update(section) {
    const open = ["a", "b"].every((slot) => isHeard(section, slot));
    for (const slot of ["a", "b"]) {
      const mark = section.querySelector(`[data-clip="${slot}"] .heard`);
      if (mark) mark.hidden = !isHeard(section, slot);
    }
    if (!section.dataset.ended) { // htmx holds the buttons while the vote is on its way
      section.querySelectorAll("form.vote button").forEach((button) => { button.disabled = !open; });
    }
    section.classList.toggle("unlocked", open);
    const note = section.querySelector(".lock-note");
    if (note && open) note.textContent = "You have heard both answers: vote now.";
  }

  // Headers htmx sends (hx-headers on the page, a CSRF token for example) go with reports too.
  function headers(section) {
    const holder = section.closest("[hx-headers]");
    try {
      return holder ? JSON.parse(holder.getAttribute("hx-headers")) : {};
    } catch (error) {
      return {};
    }
  }

  function send(section) {
    if (!section || !section.isConnected || section.dataset.ended) return;
    fetch(section.dataset.playsUrl, {
      method: "POST",
      body: new URLSearchParams(report(section)),
      headers: headers(section),
      keepalive: true,
      credentials: "same-origin",
    }).catch(() => {});
  }

  function onAudio(event) {
    const audio = event.target;
    if (!(audio instanceof HTMLMediaElement)) return;
    const section = battleOf(audio);
    if (!section) return;
    const clip = stateOf(section)[audio.dataset.slot];
    if (!clip) return;
    switch (event.type) {
      case "play":
        clip.last = audio.currentTime;
        section.dataset.playing = audio.dataset.slot;
        break;
      case "timeupdate":
        if (clip.last !== null && !audio.paused) {
          const step = audio.currentTime - clip.last;
          if (step > 0 && step < 1.5) clip.listened += step; // a jump is a seek, not listening
          clip.last = audio.currentTime;
        }
        break;
      case "seeking":
        clip.last = null;
        break;
      case "seeked":
        clip.last = audio.paused ? null : audio.currentTime;
        break;
      case "ended":
      case "pause":
        if (clip.last !== null) {
          const step = audio.currentTime - clip.last;
          if (step > 0 && step < 1.5) clip.listened += step;
        }
        clip.last = null;
        if (event.type === "ended") clip.ended = true;
        send(section);
        break;
    }
    update(section);
  }

  for (const type of ["play", "timeupdate", "seeking", "seeked", "pause", "ended", "loadedmetadata"]) {
    document.addEventListener(type, onAudio, true);
  }

  // Every request about this battle (vote, skip, report) carries how it was heard.
  document.addEventListener("htmx:configRequest", (event) => {
    const section = battleOf(event.detail.elt);
    if (!section) return;
    Object.assign(event.detail.parameters, report(section));
  });
  document.addEventListener("htmx:beforeRequest", (event) => {
    const section = battleOf(event.detail.elt);
    if (section) section.dataset.ended = "sending";
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    const section = battleOf(event.detail.elt);
    if (section && section.isConnected && !event.detail.successful) delete section.dataset.ended;
  });
  document.addEventListener("htmx:afterSwap", () => {
    const section = current();
    if (section) update(section);
  });

  // Play events also leave when the page is hidden or closed mid-battle.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") send(current());
  });
  window.addEventListener("pagehide", () => send(current()));

  // Space plays or pauses: the clip playing, else the first one not heard yet, else the prompt.
  function toggle(section) {
    const playing = [...section.querySelectorAll("audio")].find((a) => !a.paused && !a.ended);
    if (playing) {
      playing.pause();
      return;
    }
    const state = stateOf(section);
    const last = section.dataset.playing && audioOf(section, section.dataset.playing);
    if (last && !last.ended && last.currentTime > 0) {
      last.play();
      return;
    }
    const next = SLOTS.find((slot) => !state[slot].ended) || "prompt";
    audioOf(section, next).play();
  }

  const KEYS = { "1": "a", a: "a", "2": "b", b: "b", "3": "tie", t: "tie", "4": "both_bad" };

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select, audio, details[open] form")) return;
    const section = current();
    if (!section) return;
    const key = event.key.toLowerCase();
    if (key === " " || key === "spacebar") {
      event.preventDefault(); // not a click on a focused button
      toggle(section);
    } else if (key === "s") {
      section.querySelector("button.skip").click();
    } else if (KEYS[key]) {
      const button = section.querySelector(`form.vote button[value="${KEYS[key]}"]`);
      if (button && !button.disabled) button.click();
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    const section = current();
    if (section) update(section);
  });
})();
