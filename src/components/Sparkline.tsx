import React from 'react';

/**
 * Properties of a sparkline.
 */
export interface ISparklineProps {
  /** The values, oldest first; null where nothing was measured. */
  values: ReadonlyArray<number | null>;
  /** What the line shows, for screen readers and the tooltip. */
  label: string;
  /** The latest value as text, shown next to the line. */
  latest: string;
  width?: number;
  height?: number;
}

/**
 * A tiny line chart of recent values (an SVG polyline), with the latest value beside it.
 */
export function Sparkline(props: ISparklineProps): JSX.Element {
  const { values, label, latest, width = 80, height = 18 } = props;
  const measured = values.filter((v): v is number => v !== null);
  const max = Math.max(...measured, 0);
  const min = Math.min(...measured, 0);
  const span = max - min || 1;
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const points = values
    .map((v, i) =>
      v === null
        ? null
        : `${(i * step).toFixed(1)},${(
            height -
            1 -
            ((v - min) / span) * (height - 2)
          ).toFixed(1)}`
    )
    .filter(p => p !== null)
    .join(' ');
  return (
    <span className="jp-ModelHub-sparkline" title={`${label}: ${latest}`}>
      <svg
        width={width}
        height={height}
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`${label}, latest ${latest}`}
      >
        {measured.length > 1 && (
          <polyline className="jp-ModelHub-sparklineLine" points={points} />
        )}
      </svg>
      <span className="jp-ModelHub-sparklineValue">{latest}</span>
    </span>
  );
}
