// The consortium dashboard's charts, drawn with Chart.js from the figures the page embeds.
import { Chart, registerables } from "chart.js";
import "../css/dashboard.css";

Chart.register(...registerables);

const data = JSON.parse(document.getElementById("dashboard-data").textContent);
const percent = (value) => (value === null ? null : Math.round(value * 1000) / 10);

function draw(id, config) {
  const canvas = document.getElementById(id);
  if (!canvas) return null;
  return new Chart(canvas, {
    ...config,
    options: { responsive: true, animation: false, maintainAspectRatio: false, ...config.options },
  });
}

draw("chart-share", {
  type: "line",
  data: {
    labels: data.labels,
    datasets: [
      { label: data.series.share, data: data.share.map(percent), borderColor: "#1f6feb" },
      { label: data.series.target, data: data.target.map(percent), borderColor: "#d1242f", borderDash: [6, 4] },
      { label: data.series.bed_share, data: data.bed_share.map(percent), borderColor: "#1a7f37" },
    ],
  },
  options: { scales: { y: { beginAtZero: true, suggestedMax: 60 } } },
});

draw("chart-seats", {
  type: "bar",
  data: {
    labels: data.labels,
    datasets: [
      { label: data.series.booked, data: data.booked, backgroundColor: "#1f6feb" },
      { label: data.series.released, data: data.released, backgroundColor: "#bf8700" },
      { label: data.series.no_shows, data: data.no_shows, backgroundColor: "#d1242f" },
    ],
  },
});

draw("chart-referrals", {
  type: "bar",
  data: {
    labels: data.labels,
    datasets: [
      { label: data.series.up, data: data.referrals_up, backgroundColor: "#8250df" },
      { label: data.series.down, data: data.referrals_down, backgroundColor: "#1a7f37" },
    ],
  },
});

draw("chart-reads", {
  type: "line",
  data: {
    labels: data.labels,
    datasets: [
      { label: data.series.consults, data: data.consults, borderColor: "#8250df" },
      { label: data.series.ecg, data: data.ecg, borderColor: "#d1242f" },
      { label: data.series.imaging, data: data.imaging, borderColor: "#1f6feb" },
    ],
  },
});

document.documentElement.dataset.chartsReady = "true";
